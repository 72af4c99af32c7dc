/**
 * The layer cache's D1 rows as the trust checks use them: reading a key's cached result, and
 * forgetting one whose image is gone from the registry. Deletes are conditional on the digest,
 * so a result written since (a rebuild) is never removed; both are idempotent.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { buildLayers } from "../workers/db/schema/builds.ts";
import { layers } from "../workers/db/schema/layers.ts";

/** A key's cached result in D1, or null. */
export async function cachedLayerRow(
  env: Env,
  workspaceId: string,
  key: string,
): Promise<{ digest: string; reference: string; buildId: string | null } | null> {
  return (
    (await drizzle(env.DB)
      .select({ digest: layers.digest, reference: layers.reference, buildId: layers.buildId })
      .from(layers)
      .where(and(eq(layers.workspaceId, workspaceId), eq(layers.key, key)))
      .get()) ?? null
  );
}

/**
 * Removes the cached result `digest` of a key (and, when `ownBuild` recorded that digest as its
 * own result, that record: the build is about to build the key again).
 */
export async function forgetCachedLayer(
  env: Env,
  workspaceId: string,
  key: string,
  digest: string,
  ownBuild: string | null,
): Promise<void> {
  const db = drizzle(env.DB);
  const cache = db.delete(layers).where(and(eq(layers.workspaceId, workspaceId), eq(layers.key, key), eq(layers.digest, digest)));
  if (ownBuild === null) {
    await cache;
    return;
  }
  await db.batch([
    cache,
    db.delete(buildLayers).where(and(eq(buildLayers.buildId, ownBuild), eq(buildLayers.key, key), eq(buildLayers.digest, digest))),
  ]);
}
