/**
 * What the Build object checks before it believes a runner, pure: which image a layer's
 * result must extend, whether a pushed manifest's layers extend its parent's, which cached
 * layer a job pulled, and the messages a refused report or a missing image fails with. The
 * reads of the registry are in `report-verify.ts`; `runner-events.ts` plans with the answers.
 */
import type { LayerSpec } from "@kiln-build/protocol";
import { parseDockerfile, parseStages } from "@kiln-build/protocol/dockerfile";
import type { LayerRow } from "./build-store.ts";

/** The verdict on one `layer_succeeded` report: `problem` null when the registry backs it. */
export type LayerCheck = { key: string; digest: string; parent: string | null; problem: string | null };

/** A cached layer's image the job pulled: its key and digest-pinned reference. */
export type PulledLayer = { key: string; reference: string };

/** How to build a layer again: its spec and the cached image below it (null for a root layer). */
export type LayerRecipe = { index: number; key: string; spec: LayerSpec; parentKey: string | null; parentReference: string | null };

/** A layer's recipe as the build that made it keeps it (the spec as JSON: it crosses an RPC). */
export type StoredRecipe = { index: number; key: string; specJson: string; parentKey: string | null };

/** What a `failed` report turned out to be, once checked against the registry. */
export type FailureDiagnosis =
  /** The cached layer the job builds on is gone from the registry; its cache entry was invalidated. `recipe`: how to rebuild it, if known. */
  | { kind: "cached_layer_missing"; layer: PulledLayer; recipe: LayerRecipe | "own" | null; again: boolean }
  /** An image the layers name (FROM, COPY --from) does not exist: the user's to fix. */
  | { kind: "base_missing"; reference: string; answer: string }
  /** The cached image the job stood on could not be pulled, though the registry holds it: an infrastructure failure. */
  | { kind: "pull_failed"; reference: string };

/** `<host>/<repository>[:tag][@digest]` split into the repository path and the pinned digest. */
export function repositoryOf(reference: string): { repository: string; digest: string | null } {
  const slash = reference.indexOf("/");
  let rest = slash >= 0 ? reference.slice(slash + 1) : reference;
  const at = rest.indexOf("@");
  const digest = at >= 0 ? rest.slice(at + 1) : null;
  if (at >= 0) rest = rest.slice(0, at);
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) rest = rest.slice(0, colon);
  return { repository: rest, digest };
}

/** The layer digests of an image manifest, in order; "index" for an index or list; null when it is neither. */
export function manifestLayers(bytes: Uint8Array): string[] | "index" | null {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  if (typeof json !== "object" || json === null) return null;
  const { layers, manifests } = json as { layers?: unknown; manifests?: unknown };
  if (Array.isArray(manifests)) return "index";
  if (!Array.isArray(layers)) return null;
  const digests = layers.map((l) => (typeof l === "object" && l !== null ? (l as { digest?: unknown }).digest : undefined));
  return digests.every((d): d is string => typeof d === "string") ? digests : null;
}

/** True when `layers` starts with every layer of `parent`, in order (a layer may add none). */
export function extendsLayers(parent: readonly string[], layers: readonly string[]): boolean {
  return parent.length <= layers.length && parent.every((digest, i) => layers[i] === digest);
}

/**
 * Whether a derived layer's image is built on its parent: its last stage descends from the
 * leading `FROM base` (a later FROM of another image or `scratch` makes an image that need not).
 * A Dockerfile this cannot read is not held to it.
 */
export function buildsOnParent(commands: readonly string[]): boolean {
  let stages: { baseName: string; name: string }[];
  try {
    stages = parseStages(parseDockerfile(commands.join("\n"))).stages;
  } catch {
    return false;
  }
  let at = stages.length - 1;
  for (let hops = 0; at > 0 && hops < stages.length; hops++) {
    const base = stages[at]!.baseName.toLowerCase();
    const named = stages.findIndex((s, i) => i < at && (s.name.toLowerCase() === base || String(i) === base));
    if (named < 0) return false;
    at = named;
  }
  return at === 0;
}

/** The image layer `index` was built on: the layer below it (cached, or built by this build), the build's parent, or null for a root. */
export function parentImage(layers: readonly LayerRow[], index: number, buildParent: string | null): { reference: string | null } | null {
  const first = layers[0]?.index ?? index;
  if (index === first) return { reference: buildParent };
  const below = layers.find((l) => l.index === index - 1);
  if (!below || below.reference === null || (below.state !== "cached" && below.state !== "built")) return null;
  return { reference: below.reference };
}

/**
 * The image the current attempt's job builds on, which the runner pulls first: the one below
 * the first layer still to build (a cached layer, one an earlier attempt built, or the build's
 * parent). Null for a job that starts at a root layer.
 */
export function pulledLayer(
  layers: readonly LayerRow[],
  build: { parentKey: string | null; parentReference: string | null },
): PulledLayer | null {
  const next = layers.find((l) => l.state === "claimed");
  if (!next) return null;
  if (next.index === layers[0]!.index) {
    return build.parentKey !== null && build.parentReference !== null ? { key: build.parentKey, reference: build.parentReference } : null;
  }
  const below = layers.find((l) => l.index === next.index - 1);
  return below?.reference ? { key: below.key, reference: below.reference } : null;
}

/** Why a `layer_succeeded` report is refused. */
export const refusal = {
  notInRegistry: (key: string, digest: string, repository: string) =>
    `The runner reported layer ${key} as ${digest}, which is not in the registry (${repository}).`,
  notAnImage: (key: string, digest: string) => `The runner reported layer ${key} as ${digest}, which is not an image manifest.`,
  parentMissing: (key: string, digest: string, parent: string) =>
    `The runner reported layer ${key} as ${digest}, but its parent image ${parent} is not in the registry.`,
  doesNotExtend: (key: string, digest: string, parent: string) =>
    `The runner reported layer ${key} as ${digest}, which does not extend its parent ${parent}.`,
  beforeParent: (key: string) => `The runner reported layer ${key} before the layer below it.`,
};

/** What a failure is reported as once the registry was checked. */
export const diagnosisMessage = {
  rebuilding: (layer: PulledLayer) =>
    `The cached layer ${layer.key} (${layer.reference}) is no longer in the registry; its cache entry was removed and it is rebuilt.`,
  resubmit: (layer: PulledLayer) =>
    `The cached layer ${layer.key} (${layer.reference}) is no longer in the registry. Its cache entry was removed: build the image again to rebuild it.`,
  baseMissing: (reference: string, answer: string) =>
    `The base image ${reference} does not exist (its registry answered "${answer}"). Check the image reference (registry, repository and tag) in FROM or COPY --from.`,
};
