/**
 * Which consecutive layers of a job build in one `buildah bud` (a "chain"), and the one
 * Dockerfile such a chain builds. Pure.
 *
 * Why: with the vfs storage driver every commit waits for the next whole second (the naive
 * diff driver's mtime guard), so a build's time is counted in commits and what lies between
 * them. A separate `bud` per layer puts a process start and a new working container (a full
 * copy of the parent's tree under vfs) between two commits; one `bud --layers` of the joined
 * steps puts nothing there, exactly like the single-Dockerfile build users compare us with.
 * Each layer's image is the step image buildah commits after the layer's last step.
 *
 * A layer joins the chain before it only when building it in the same stage gives the same
 * image as building it `FROM` the previous layer's image:
 * - it is single-stage and continues its parent (`FROM base`, no other FROM), and has a step;
 * - nothing earlier in the chain leaks into its stage: no ARG (scope), SHELL (the OCI config
 *   does not keep it) or ONBUILD (triggers fire only on a new FROM);
 * - the chain shares one build context and one set of build arguments: at most one layer
 *   reads a context, and every layer has the same build arguments;
 * - no GPUs (they are reserved per layer), no build target (`--target` applies to a whole
 *   build), and the backend can build chains.
 */
import type { JobLayer } from "@kiln-build/protocol";
import { type Instruction, parseDockerfile } from "@kiln-build/protocol/dockerfile";
import { layerStage } from "./layer-stage.ts";

/** Instructions whose effect on later steps of the same stage differs from a new `FROM`. */
const LEAKS_INTO_LATER_STEPS = new Set(["arg", "shell", "onbuild"]);

/** Groups layer positions (0-based, in order) into chains; a chain of one builds alone. */
export function planChains(layers: readonly JobLayer[], options: { enabled: boolean }): number[][] {
  const chains: number[][] = [];
  let current: { members: number[]; context: boolean; leaks: boolean; buildArgs: string } | null = null;
  for (const [i, layer] of layers.entries()) {
    const shape = layerShape(layer);
    const buildArgs = canonicalArgs(layer.buildArgs);
    const joins =
      options.enabled &&
      current !== null &&
      shape.chainable &&
      shape.continuesParent &&
      !current.leaks &&
      !(current.context && shape.readsContext) &&
      current.buildArgs === buildArgs;
    if (joins && current) {
      current.members.push(i);
      current.context ||= shape.readsContext;
      current.leaks ||= shape.leaks;
    } else {
      current = { members: [i], context: shape.readsContext, leaks: shape.leaks, buildArgs };
      // A layer that cannot be continued ends its chain at once.
      if (!options.enabled || !shape.chainable) current.leaks = true;
      chains.push(current.members);
    }
  }
  return chains;
}

/** The joined Dockerfile and, per layer, the number (1-based, as buildah counts) of its last step. */
export type ChainDockerfile = { text: string; lastSteps: number[]; totalSteps: number };

/**
 * Joins rendered layer Dockerfiles: the first as it is, the others without their leading
 * `FROM` line. Steps are counted from the first FROM (global ARGs are not steps).
 */
export function joinChain(parts: readonly string[]): ChainDockerfile {
  const lines: string[] = [];
  const lastSteps: number[] = [];
  let steps = 0;
  for (const [i, text] of parts.entries()) {
    const instructions = parseDockerfile(text).instructions;
    const from = instructions.findIndex((inst) => inst.command === "from");
    if (i === 0) {
      steps += instructions.length - from;
      lines.push(text.replace(/\n+$/, ""));
    } else {
      const first = instructions[0]!;
      steps += instructions.length - 1;
      lines.push(text.split("\n").slice(first.endLine).join("\n").replace(/\n+$/, ""));
    }
    lastSteps.push(steps);
  }
  return { text: `${lines.join("\n")}\n`, lastSteps, totalSteps: steps };
}

type LayerShape = { chainable: boolean; continuesParent: boolean; readsContext: boolean; leaks: boolean };

function layerShape(layer: JobLayer): LayerShape {
  let instructions: Instruction[];
  try {
    instructions = parseDockerfile(layer.dockerfileCommands.join("\n")).instructions;
  } catch {
    // The per-layer build reports the parse error with the layer's own lines.
    return { chainable: false, continuesParent: false, readsContext: false, leaks: true };
  }
  const froms = instructions.filter((inst) => inst.command === "from");
  const firstFrom = instructions.findIndex((inst) => inst.command === "from");
  const stage = firstFrom < 0 ? [] : instructions.slice(firstFrom + 1);
  const readsContext =
    layer.context !== null ||
    layer.pythonStandalone !== null ||
    layer.buildFunction !== null ||
    stage.some((inst) => (inst.command === "copy" || inst.command === "add") && !inst.flags.some((f) => f.startsWith("--from=")));
  return {
    chainable: froms.length === 1 && stage.length > 0 && layer.gpu === null && layerStage(layer) === null,
    continuesParent: layer.dockerfileCommands[0]?.trim() === "FROM base" && firstFrom === 0,
    readsContext,
    leaks: stage.some((inst) => LEAKS_INTO_LATER_STEPS.has(inst.command)),
  };
}

function canonicalArgs(args: Record<string, string>): string {
  return JSON.stringify(Object.entries(args).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
