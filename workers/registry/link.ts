/**
 * Publishing a manifest under a tag of another repository of the same workspace, by
 * reference: the manifest row, its references and the blob links are copied from the
 * repository that holds it (D1 rows only; blobs and manifest bytes in R2 are content-addressed
 * and shared), and the tag is moved, in one batch. What the tag pointed at before stays in the
 * repository, pullable by digest, until deleted or collected.
 */
import { and, eq, sql } from "drizzle-orm";
import { registryManifestRefs, registryManifests, registryTags } from "../db/schema/registry.ts";
import { type Db, db, findManifest } from "./store.ts";

/** Where the manifest is and where it is published. */
export type ManifestLink = { from: string; to: string; workspaceId: string; digest: string; tag: string; nowMs: number };

// Statements over the manifest `?1` of repository `?2`, publishing into repository `?3`, tag `?4`, at `?5` (ms).
const REFS = "repository = ?2 AND manifest = ?1";
const HELD = "EXISTS (SELECT 1 FROM registry_manifests WHERE repository = ?2 AND digest = ?1)";
const STATEMENTS = [
  "INSERT INTO registry_repositories (name, workspace_id, public, created_at) VALUES (?3, ?6, 0, ?5) ON CONFLICT (name) DO NOTHING",
  // The GC's grace period counts from here: a sweep in progress keeps these blobs.
  `UPDATE registry_blobs SET touched_at = ?5 WHERE digest IN (SELECT child FROM registry_manifest_refs WHERE ${REFS})`,
  `INSERT OR IGNORE INTO registry_repository_blobs (repository, digest, created_at)
     SELECT ?3, child, ?5 FROM registry_manifest_refs WHERE ${REFS} AND kind = 'blob'`,
  `INSERT OR IGNORE INTO registry_manifests (repository, digest, media_type, size_bytes, subject, artifact_type, annotations, created_at)
     SELECT ?3, digest, media_type, size_bytes, subject, artifact_type, annotations, ?5 FROM registry_manifests WHERE repository = ?2 AND digest = ?1`,
  `INSERT OR IGNORE INTO registry_manifest_refs (repository, manifest, child, kind)
     SELECT ?3, manifest, child, kind FROM registry_manifest_refs WHERE ${REFS}`,
  // Its referrers (signed attestations, decision 0024) travel with it: blob links, rows, references.
  `INSERT OR IGNORE INTO registry_repository_blobs (repository, digest, created_at)
     SELECT ?3, r.child, ?5 FROM registry_manifest_refs r JOIN registry_manifests m ON m.repository = r.repository AND m.digest = r.manifest
     WHERE m.repository = ?2 AND m.subject = ?1 AND r.kind = 'blob'`,
  `INSERT OR IGNORE INTO registry_manifests (repository, digest, media_type, size_bytes, subject, artifact_type, annotations, created_at)
     SELECT ?3, digest, media_type, size_bytes, subject, artifact_type, annotations, ?5 FROM registry_manifests WHERE repository = ?2 AND subject = ?1`,
  `INSERT OR IGNORE INTO registry_manifest_refs (repository, manifest, child, kind)
     SELECT ?3, r.manifest, r.child, r.kind FROM registry_manifest_refs r JOIN registry_manifests m ON m.repository = r.repository AND m.digest = r.manifest
     WHERE m.repository = ?2 AND m.subject = ?1`,
  // Only while the manifest is still there (a concurrent delete wins): the tag never dangles.
  `INSERT INTO registry_tags (repository, tag, digest, updated_at) SELECT ?3, ?4, ?1, ?5 WHERE ${HELD}
     ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
];

/** Links manifest `digest` of `from` into `to` and points `to:tag` at it, in one batch; false when `from` does not hold it. */
export async function linkTaggedManifest(env: Env, link: ManifestLink): Promise<boolean> {
  if (!(await findManifest(db(env), link.from, link.digest))) return false;
  await env.DB.batch(linkStatements(env, link, true));
  return true;
}

/**
 * The statements linking manifest `link.digest` of `from` into `to`; with `withTag`, the last
 * one also points `to:tag` at it. An image index is linked by linking each child without the
 * tag, then the index with it, in one batch (link-index.ts).
 */
export function linkStatements(env: Env, link: ManifestLink, withTag: boolean): D1PreparedStatement[] {
  const { from, to, workspaceId, digest, tag, nowMs } = link;
  const args = [digest, from, to, tag, nowMs, workspaceId];
  // SQLite numbers a statement's parameters up to the highest `?N` it uses: bind exactly those.
  const highest = (text: string) => Math.max(...[...text.matchAll(/\?(\d)/g)].map((m) => Number(m[1])));
  const texts = withTag ? STATEMENTS : STATEMENTS.slice(0, -1);
  return texts.map((text) => env.DB.prepare(text).bind(...args.slice(0, highest(text))));
}

/** Removes tag `tag` of `repository` (the manifest stays, pullable by digest); true when it existed. */
export async function unlinkTag(d: Db, repository: string, tag: string): Promise<boolean> {
  const rows = await d
    .delete(registryTags)
    .where(and(eq(registryTags.repository, repository), eq(registryTags.tag, tag)))
    .returning();
  return rows.length > 0;
}

/**
 * Deletes manifest `digest` of `repository` (its row and references; bytes go at the next GC) when
 * no tag there points at it, in one batch whose statements re-check that; true when it was deleted.
 */
export async function deleteUntaggedManifest(d: Db, repository: string, digest: string): Promise<boolean> {
  // Nor does an index there name it (a child manifest is the index's to keep).
  const untagged = sql`NOT EXISTS (SELECT 1 FROM ${registryTags} WHERE ${registryTags.repository} = ${repository} AND ${registryTags.digest} = ${digest})
    AND NOT EXISTS (SELECT 1 FROM ${registryManifestRefs} WHERE ${registryManifestRefs.repository} = ${repository} AND ${registryManifestRefs.child} = ${digest})`;
  const [deleted] = await d.batch([
    d
      .delete(registryManifests)
      .where(and(eq(registryManifests.repository, repository), eq(registryManifests.digest, digest), untagged))
      .returning({ digest: registryManifests.digest }),
    d
      .delete(registryManifestRefs)
      .where(
        and(
          eq(registryManifestRefs.repository, repository),
          eq(registryManifestRefs.manifest, digest),
          sql`NOT EXISTS (SELECT 1 FROM ${registryManifests} WHERE ${registryManifests.repository} = ${repository} AND ${registryManifests.digest} = ${digest})`,
        ),
      ),
  ]);
  return deleted.length > 0;
}
