/**
 * Garbage collection, whole (the cron trigger, `scheduled` in workers/index.ts): first the
 * layer cache rows no image uses any more are evicted, then the registry's mark and sweep
 * (workers/registry/gc.ts) collects the layer manifests nothing references and the blobs only
 * they named. The cache is shared by key within a workspace, so a row is evicted only when no
 * image of its workspace lists the key and no running build builds it, and only once it is
 * older than the grace period. docs/decisions/0018-image-deletion-and-gc.md.
 */
import { gcGraceMs, type RegistryGcOptions, type RegistryGcReport, runRegistryGc } from "../workers/registry/gc.ts";
import { layerBuildName } from "./layer-build.ts";

/** A layer cache row the GC evicted (or, in dry-run, would evict). */
export type EvictedCacheEntry = { workspaceId: string; key: string; digest: string };

/** What one GC run did. */
export type GcReport = RegistryGcReport & { cacheEntries: EvictedCacheEntry[] };

const FINAL_BUILD = "('succeeded', 'failed', 'cancelled', 'timeout')";
// `l` is the cache row. Keys travel in JSON arrays (`images.layer_keys`, `builds.layer_keys`).
const UNUSED = `NOT EXISTS (SELECT 1 FROM images i, json_each(i.layer_keys) j WHERE i.workspace_id = l.workspace_id AND j.value = l.key)
  AND NOT EXISTS (SELECT 1 FROM builds b, json_each(b.layer_keys) j
                  WHERE b.workspace_id = l.workspace_id AND j.value = l.key AND b.status NOT IN ${FINAL_BUILD})`;
const CANDIDATES = `SELECT workspace_id AS workspaceId, key, digest FROM layers l WHERE built_at < ?1 AND ${UNUSED} LIMIT ?2`;
// Re-checked in the delete itself: an image submitted since the read keeps the row.
const EVICT = `DELETE FROM layers AS l WHERE workspace_id = ?1 AND key = ?2 AND digest = ?3 AND built_at < ?4 AND ${UNUSED}`;
// Rows per run: the rest wait for the next one (the cron runs daily).
const MAX_PER_RUN = 5000;

/** Evicts (or lists) the cache rows older than `cutoffMs` that no image uses, here and in their LayerBuild objects. */
export async function evictUnusedLayers(env: Env, options: { dryRun: boolean; cutoffMs: number }): Promise<EvictedCacheEntry[]> {
  const { results } = await env.DB.prepare(CANDIDATES).bind(options.cutoffMs, MAX_PER_RUN).all<EvictedCacheEntry>();
  if (options.dryRun) return results;
  const evicted: EvictedCacheEntry[] = [];
  for (const row of results) {
    const { meta } = await env.DB.prepare(EVICT).bind(row.workspaceId, row.key, row.digest, options.cutoffMs).run();
    if (meta.changes === 0) continue;
    // The object would otherwise still answer "cached" with a result whose manifest is about to go.
    await env.LAYER_BUILD.getByName(layerBuildName(row.workspaceId, row.key)).evict(row.workspaceId, row.key, row.digest);
    evicted.push(row);
  }
  return evicted;
}

/** One whole GC run: cache eviction, then the registry's (same grace period and clock). */
export async function runGc(env: Env, options: RegistryGcOptions): Promise<GcReport> {
  const now = options.now ?? Date.now();
  const graceMs = Math.max(options.graceMs ?? gcGraceMs(env), 0);
  const cacheEntries = await evictUnusedLayers(env, { dryRun: options.dryRun, cutoffMs: now - graceMs });
  const registry = await runRegistryGc(env, { ...options, now, graceMs });
  return { ...registry, cacheEntries };
}
