/**
 * The GC's first stage: manifests of the workspaces' layer repositories (`<ws>/layers`, where
 * runners push built layers) that nothing in Kiln references any more, so the blob sweep that
 * follows (gc.ts) reclaims the bytes only they referenced. Everything in `<ws>/layers` is Kiln's:
 * a manifest there is kept while
 * - a layer cache row of the workspace names it (`layers`; rows no image uses are evicted
 *   before, durable-objects/layer-cache-gc.ts),
 * - a build of the workspace recorded it (`build_layers`) and that build is still running or
 *   some image still points at it (ignore-cache builds and images whose build replaced the cache),
 * - the workspace has a live job token that may push (a build is pushing: its manifests may
 *   not be recorded yet),
 * - another manifest of the repository names it (an index), or a multi-platform image's row
 *   names it (`image_indexes`, the index Kiln assembled, decision 0023),
 * - it is an attestation whose subject the repository still holds (decision 0024), or
 * - it was pushed within the grace period.
 * Each delete re-checks all of that in the same statement, like the blob sweep.
 * docs/decisions/0018-image-deletion-and-gc.md.
 */

/** A manifest of a layer repository the GC deleted (or, in dry-run, would delete). */
export type CollectedLayerManifest = { repository: string; digest: string };

const FINAL_BUILD = "('succeeded', 'failed', 'cancelled', 'timeout')";
// ?1 repository, ?2 digest, ?3 workspace id, ?4 now (ms), ?5 cutoff (ms); `m` is the manifest row.
const KEPT = `(
  EXISTS (SELECT 1 FROM layers l WHERE l.workspace_id = ?3 AND l.digest = m.digest)
  OR EXISTS (SELECT 1 FROM build_layers bl JOIN builds b ON b.id = bl.build_id
             WHERE b.workspace_id = ?3 AND bl.digest = m.digest
               AND (b.status NOT IN ${FINAL_BUILD} OR EXISTS (SELECT 1 FROM images i WHERE i.build_id = b.id)))
  OR EXISTS (SELECT 1 FROM job_tokens t WHERE t.workspace_id = ?3 AND t.expires_at > ?4 AND t.actions LIKE '%"push"%')
  OR EXISTS (SELECT 1 FROM registry_manifest_refs x WHERE x.repository = m.repository AND x.child = m.digest)
  OR (m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM registry_manifests s WHERE s.repository = m.repository AND s.digest = m.subject))
  OR EXISTS (SELECT 1 FROM image_indexes ix WHERE ix.workspace_id = ?3 AND ix.digest = m.digest)
  OR m.created_at >= ?5)`;

const CANDIDATES = `
  SELECT m.repository AS repository, m.digest AS digest, r.workspace_id AS workspaceId
  FROM registry_manifests m
  JOIN registry_repositories r ON r.name = m.repository
  JOIN workspaces w ON w.id = r.workspace_id AND m.repository = w.name || '/layers'
  WHERE m.created_at < ?5 AND NOT ${KEPT.replaceAll("?3", "r.workspace_id")}
  LIMIT ?6`;

const GONE = "NOT EXISTS (SELECT 1 FROM registry_manifests WHERE repository = ?1 AND digest = ?2)";
const DELETE = [
  `DELETE FROM registry_manifests AS m WHERE m.repository = ?1 AND m.digest = ?2 AND NOT ${KEPT}`,
  `DELETE FROM registry_manifest_refs WHERE repository = ?1 AND manifest = ?2 AND ${GONE}`,
  `DELETE FROM registry_tags WHERE repository = ?1 AND digest = ?2 AND ${GONE}`,
];

// Candidates per run: the rest wait for the next one (the cron runs daily).
const MAX_PER_RUN = 5000;

/**
 * Deletes (or lists, in dry-run) the unreferenced manifests of layer repositories older than
 * `cutoff`: their rows, references and layer-key tags. Their bytes and blobs go in the sweep
 * that follows.
 */
export async function collectLayerManifests(env: Env, options: { dryRun: boolean; nowMs: number; cutoffMs: number }) {
  const { nowMs, cutoffMs } = options;
  const { results } = await env.DB.prepare(CANDIDATES)
    .bind(null, null, null, nowMs, cutoffMs, MAX_PER_RUN)
    .all<CollectedLayerManifest & { workspaceId: string }>();
  const collected: CollectedLayerManifest[] = [];
  for (const { repository, digest, workspaceId } of results) {
    if (!options.dryRun) {
      const args = [repository, digest, workspaceId, nowMs, cutoffMs];
      const [deleted] = await env.DB.batch(DELETE.map((text, i) => env.DB.prepare(text).bind(...(i === 0 ? args : args.slice(0, 2)))));
      // Kept since the candidates were read (a build recorded it, a cache row names it again).
      if ((deleted?.meta.changes ?? 0) === 0) continue;
    }
    collected.push({ repository, digest });
  }
  return collected;
}
