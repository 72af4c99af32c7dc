/**
 * The Build object's reads behind its trust in a runner: a `layer_succeeded` report is checked
 * against the built-in registry's own store (D1 rows and R2 bytes, never HTTP), and an `infra`
 * failure is checked for the cached image the job stood on having gone missing (then its cache
 * entry is invalidated) or for a base image that does not exist. Reads only, plus the
 * idempotent invalidation; the object re-reads its state after these awaits and applies the
 * answers synchronously (`runner-events.ts` plans with them).
 */
import type { LayerSpec, RunnerEvent } from "@kiln-build/protocol";
import { manifestServed, storedManifest } from "../workers/registry/store.ts";
import type { LayerRow } from "./build-store.ts";
import { cachedLayerRow } from "./cache-d1.ts";
import { layerBuildName } from "./layer-build.ts";
import { missingImage, pinnedDigest } from "./pull-failure.ts";
import {
  extendsLayers,
  type FailureDiagnosis,
  type LayerCheck,
  type LayerRecipe,
  manifestLayers,
  type PulledLayer,
  pulledLayer,
  refusal,
  repositoryOf,
} from "./report-checks.ts";

/** A layer result to check: the reported digest, where the job was told to push it, and the image it must extend. */
export type LayerReport = {
  key: string;
  digest: string;
  /** The job's target for the layer (`<host>/<workspace>/layers:<tag>`): the repository the result must be in. */
  target: string;
  /** The image below it (null reference: a root layer); null when the layer below has no result yet. */
  parent: { reference: string | null } | null;
  /** Whether the layer's image must extend its parent's (see `buildsOnParent`). */
  onParent: boolean;
};

/** Checks a `layer_succeeded` report: the manifest is in the target repository, and its layers extend the parent's. */
export async function checkLayerReport(env: Env, report: LayerReport): Promise<LayerCheck> {
  const { key, digest } = report;
  const verdict = (problem: string | null): LayerCheck => ({ key, digest, parent: report.parent?.reference ?? null, problem });
  if (report.parent === null) return verdict(refusal.beforeParent(key));
  const { repository } = repositoryOf(report.target);
  const stored = await storedManifest(env, repository, digest);
  if (!stored) return verdict(refusal.notInRegistry(key, digest, repository));
  const layers = manifestLayers(stored.bytes);
  if (!Array.isArray(layers)) return verdict(refusal.notAnImage(key, digest));
  const parentReference = report.parent.reference;
  if (parentReference === null || !report.onParent) return verdict(null);
  const parent = repositoryOf(parentReference);
  const parentStored = parent.digest ? await storedManifest(env, parent.repository, parent.digest) : null;
  if (!parentStored) return verdict(refusal.parentMissing(key, digest, parentReference));
  const parentLayers = manifestLayers(parentStored.bytes);
  const extended = Array.isArray(parentLayers) && extendsLayers(parentLayers, layers);
  return verdict(extended ? null : refusal.doesNotExtend(key, digest, parentReference));
}

/** What diagnosing a failure needs to know of the build. */
export type FailureContext = {
  buildId: string;
  workspaceId: string;
  parentKey: string | null;
  parentReference: string | null;
  layers: readonly LayerRow[];
  /** The attempt that found cached layer `key` missing before, if one did (it is rebuilt once). */
  foundMissingBy: (key: string) => number | null;
};

/** The cached image the failed job stood on (its key and reference), with what checking the registry found; null: nothing to say. */
export type CheckedFailure = { pulled: string | null; diagnosis: FailureDiagnosis | null };

/**
 * Diagnoses a failure that may be a pull's: the cached image the job was built on is gone from
 * this registry (confirmed in its own store, whatever the runner says; then the key's cache
 * entry is invalidated at once), or the runner could not pull an image the registry does not
 * have. `infra` failures are all checked; a `build` failure only when it reports a failed pull
 * (a step that ran, with its exit code, had everything it pulled).
 */
export async function diagnoseFailure(
  env: Env,
  ctx: FailureContext,
  event: Extract<RunnerEvent, { type: "failed" }>,
): Promise<CheckedFailure> {
  const pulled = pulledLayer(ctx.layers, ctx);
  const checked = (diagnosis: FailureDiagnosis | null): CheckedFailure => ({ pulled: pulled?.reference ?? null, diagnosis });
  const missing = missingImage(event.message, event.logTail);
  const pullFailed = event.reason === "infra" || (event.reason === "build" && event.exitCode === null && missing !== null);
  if (!pullFailed) return checked(null);
  const pulledAt = pulled ? repositoryOf(pulled.reference) : null;
  if (pulled && pulledAt?.digest) {
    if (!(await manifestServed(env, pulledAt.repository, pulledAt.digest))) {
      return checked(await cachedLayerMissing(env, ctx, pulled, pulledAt.digest));
    }
    // The registry does hold the image it could not pull: no one's image is missing, and retrying may help.
    if (missing && pinnedDigest(missing.reference) === pulledAt.digest)
      return checked({ kind: "pull_failed", reference: pulled.reference });
  }
  return checked(missing ? { kind: "base_missing", reference: missing.reference, answer: missing.answer } : null);
}

async function cachedLayerMissing(env: Env, ctx: FailureContext, layer: PulledLayer, digest: string): Promise<FailureDiagnosis> {
  const own = ctx.layers.find((l) => l.key === layer.key);
  const again = ctx.foundMissingBy(layer.key) !== null;
  // Read before the invalidation removes the cache row that names the build which made the layer.
  const recipe = own ? ("own" as const) : again ? null : await recipeFromCache(env, ctx, layer.key);
  await env.LAYER_BUILD.getByName(layerBuildName(ctx.workspaceId, layer.key)).invalidate(
    ctx.workspaceId,
    layer.key,
    digest,
    own?.state === "built" ? ctx.buildId : null,
  );
  return { kind: "cached_layer_missing", layer, recipe, again };
}

/**
 * How to rebuild a cached layer below the build: its spec from the build that made it (kept by
 * that Build object until 7 days after it ended), on the cached image below it. Null when it
 * cannot be known; the build then fails and a new submission rebuilds the layer.
 */
async function recipeFromCache(env: Env, ctx: FailureContext, key: string): Promise<LayerRecipe | null> {
  const row = await cachedLayerRow(env, ctx.workspaceId, key);
  if (!row?.buildId || row.buildId === ctx.buildId) return null;
  const made = await env.BUILD.getByName(row.buildId).layerRecipe(key);
  if (!made || made.key !== key || made.index !== (ctx.layers[0]?.index ?? 0) - 1) return null;
  const recipe = { index: made.index, key, spec: JSON.parse(made.specJson) as LayerSpec, parentKey: made.parentKey };
  if (made.parentKey === null) return { ...recipe, parentReference: null };
  const below = await cachedLayerRow(env, ctx.workspaceId, made.parentKey);
  return below ? { ...recipe, parentReference: below.reference } : null;
}
