/**
 * The Dockerfile stage a layer builds: `Image.fromDockerfile(path, { target })`. Absent, the
 * build runs to the last stage. The job carries it as the layer's `dockerfileTarget`
 * (distinct from `target`, the reference the image is pushed to).
 */
import type { JobLayer } from "@kiln-build/protocol";
import { parseDockerfile, parseStages } from "@kiln-build/protocol/dockerfile";

/** A job layer that may name the stage to build. */
export type StagedLayer = Pick<JobLayer, "dockerfileTarget">;

/** The stage `layer` builds, or null for the last one. */
export function layerStage(layer: StagedLayer): string | null {
  const stage = layer.dockerfileTarget;
  return typeof stage === "string" && stage !== "" ? stage : null;
}

/** Why `stage` cannot be built from `commands`, or null when the Dockerfile has that stage (names match case-insensitively, as BuildKit's). */
export function stageProblem(commands: readonly string[], stage: string): string | null {
  let names: string[];
  try {
    names = parseStages(parseDockerfile(commands.join("\n"))).stages.flatMap((s) => (s.name ? [s.name] : []));
  } catch {
    return null; // the build reports the parse error itself
  }
  if (names.some((name) => name.toLowerCase() === stage.toLowerCase())) return null;
  const known = names.length > 0 ? `its named stages are: ${names.join(", ")}` : "it has no named stage";
  return `the target stage ${JSON.stringify(stage)} is not in the layer's Dockerfile (${known})`;
}
