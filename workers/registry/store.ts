/**
 * The registry's D1 queries (schema in workers/db/schema/registry.ts): repositories,
 * blob links, manifests, references and tags. Multi-statement writes use `db.batch()`.
 */
import { digestHex } from "@kiln-build/protocol";
import { and, asc, eq, gt, inArray, isNotNull, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { chunk } from "../db/in-chunks.ts";
import {
  registryBlobs,
  registryManifestRefs,
  registryManifests,
  registryRepositories,
  registryRepositoryBlobs,
  registryTags,
} from "../db/schema/registry.ts";
import { workspaces } from "../db/schema/workspaces.ts";
import type { ParsedManifest } from "./manifest.ts";
import { classifyDigest } from "./reference.ts";

/** The drizzle handle the registry uses. */
export type Db = ReturnType<typeof drizzle>;
/** A drizzle handle on the Worker's D1. */
export const db = (env: Env): Db => drizzle(env.DB);

/** The id of the workspace named `name`, or null. */
export async function workspaceIdByName(d: Db, name: string): Promise<string | null> {
  return (await d.select({ id: workspaces.id }).from(workspaces).where(eq(workspaces.name, name)).get())?.id ?? null;
}

/** Whether a repository exists and is public. */
export async function repository(d: Db, name: string): Promise<{ workspaceId: string; public: boolean } | null> {
  return (
    (await d
      .select({ workspaceId: registryRepositories.workspaceId, public: registryRepositories.public })
      .from(registryRepositories)
      .where(eq(registryRepositories.name, name))
      .get()) ?? null
  );
}

/** Marks a repository public or private (creating it empty if needed). */
export async function setVisibility(d: Db, name: string, workspaceId: string, isPublic: boolean): Promise<void> {
  await d
    .insert(registryRepositories)
    .values({ name, workspaceId, public: isPublic })
    .onConflictDoUpdate({ target: registryRepositories.name, set: { public: isPublic } });
}

/** A blob as visible in `repo`: only once the repository pushed or mounted it. */
export async function blobIn(d: Db, repo: string, digest: string): Promise<{ sizeBytes: number; r2Key: string } | null> {
  return (
    (await d
      .select({ sizeBytes: registryBlobs.sizeBytes, r2Key: registryBlobs.r2Key })
      .from(registryRepositoryBlobs)
      .innerJoin(registryBlobs, eq(registryBlobs.digest, registryRepositoryBlobs.digest))
      .where(and(eq(registryRepositoryBlobs.repository, repo), eq(registryRepositoryBlobs.digest, digest)))
      .get()) ?? null
  );
}

/**
 * Records a verified blob and links it to `repo`. When the digest was already stored (under
 * another key) the existing copy wins; returns the key now in use.
 */
export async function recordBlob(
  d: Db,
  repo: string,
  workspaceId: string,
  digest: string,
  sizeBytes: number,
  r2Key: string,
  nowMs: number,
): Promise<string> {
  const at = new Date(nowMs);
  const [, , , row] = await d.batch([
    d.insert(registryRepositories).values({ name: repo, workspaceId }).onConflictDoNothing(),
    d
      .insert(registryBlobs)
      .values({ digest, sizeBytes, r2Key, createdAt: at, touchedAt: at })
      .onConflictDoUpdate({ target: registryBlobs.digest, set: { touchedAt: at } }),
    d.insert(registryRepositoryBlobs).values({ repository: repo, digest }).onConflictDoNothing(),
    d.select({ r2Key: registryBlobs.r2Key }).from(registryBlobs).where(eq(registryBlobs.digest, digest)),
  ]);
  return row[0]?.r2Key ?? r2Key;
}

/** Links an existing blob into `repo` (cross-repository mount); false when `from` does not hold it. */
export async function mountBlob(d: Db, from: string, repo: string, workspaceId: string, digest: string, nowMs: number): Promise<boolean> {
  if (!(await blobIn(d, from, digest))) return false;
  await d.batch([
    d.insert(registryRepositories).values({ name: repo, workspaceId }).onConflictDoNothing(),
    d
      .update(registryBlobs)
      .set({ touchedAt: new Date(nowMs) })
      .where(eq(registryBlobs.digest, digest)),
    d.insert(registryRepositoryBlobs).values({ repository: repo, digest }).onConflictDoNothing(),
  ]);
  return true;
}

/** Removes a blob from one repository (the bytes go when the GC finds nothing refers to them). */
export async function unlinkBlob(d: Db, repo: string, digest: string): Promise<boolean> {
  const rows = await d
    .delete(registryRepositoryBlobs)
    .where(and(eq(registryRepositoryBlobs.repository, repo), eq(registryRepositoryBlobs.digest, digest)))
    .returning();
  return rows.length > 0;
}

/** A stored manifest's metadata, by tag or digest. */
export type ManifestRow = { digest: string; mediaType: string; sizeBytes: number };

/** Resolves a tag or digest in `repo`. */
export async function findManifest(d: Db, repo: string, reference: string): Promise<ManifestRow | null> {
  const columns = { digest: registryManifests.digest, mediaType: registryManifests.mediaType, sizeBytes: registryManifests.sizeBytes };
  if (classifyDigest(reference) !== "invalid") {
    return (
      (await d
        .select(columns)
        .from(registryManifests)
        .where(and(eq(registryManifests.repository, repo), eq(registryManifests.digest, reference)))
        .get()) ?? null
    );
  }
  return (
    (await d
      .select(columns)
      .from(registryTags)
      .innerJoin(
        registryManifests,
        and(eq(registryManifests.repository, registryTags.repository), eq(registryManifests.digest, registryTags.digest)),
      )
      .where(and(eq(registryTags.repository, repo), eq(registryTags.tag, reference)))
      .get()) ?? null
  );
}

/** What `manifestPreflight` found: the workspace's id (null: no such workspace) and the stored size of every reference `repo` holds. */
export type ManifestPreflight = { workspaceId: string | null; held: Map<string, number> };

/**
 * Everything a manifest PUT checks before storing, in one D1 batch (one round trip): the id of
 * the workspace named `workspaceName`, and the size of every blob and child manifest of
 * `manifest` that `repo` holds. Touches the blobs first, in the same batch (run in order, as one
 * transaction), so a GC sweep running concurrently either sees them fresh or has already
 * removed them (and they are then missing here): a stored manifest never points at a swept blob.
 */
export async function manifestPreflight(
  d: Db,
  repo: string,
  workspaceName: string,
  manifest: ParsedManifest,
  nowMs: number,
): Promise<ManifestPreflight> {
  const blobParts = chunk(manifest.blobs);
  const manifestParts = chunk(manifest.manifests);
  const statements = [
    d.select({ id: workspaces.id }).from(workspaces).where(eq(workspaces.name, workspaceName)),
    ...blobParts.flatMap((part) => [
      d
        .update(registryBlobs)
        .set({ touchedAt: new Date(nowMs) })
        .where(inArray(registryBlobs.digest, part)),
      d
        .select({ digest: registryBlobs.digest, sizeBytes: registryBlobs.sizeBytes })
        .from(registryRepositoryBlobs)
        .innerJoin(registryBlobs, eq(registryBlobs.digest, registryRepositoryBlobs.digest))
        .where(and(eq(registryRepositoryBlobs.repository, repo), inArray(registryRepositoryBlobs.digest, part))),
    ]),
    ...manifestParts.map((part) =>
      d
        .select({ digest: registryManifests.digest, sizeBytes: registryManifests.sizeBytes })
        .from(registryManifests)
        .where(and(eq(registryManifests.repository, repo), inArray(registryManifests.digest, part))),
    ),
  ];
  const results = (await d.batch(statements as [(typeof statements)[number], ...typeof statements])) as unknown[];
  const workspaceRows = results[0] as { id: string }[];
  const held = new Map<string, number>();
  // Every result but the workspace's and the touches' is a list of { digest, sizeBytes } rows.
  const touches = new Set(blobParts.map((_, i) => 1 + 2 * i));
  for (const [i, result] of results.entries()) {
    if (i === 0 || touches.has(i)) continue;
    for (const row of result as { digest: string; sizeBytes: number }[]) held.set(row.digest, row.sizeBytes);
  }
  return { workspaceId: workspaceRows[0]?.id ?? null, held };
}

/** The first blob or child manifest of `manifest` missing from `held`, or null. */
export function firstMissing(manifest: ParsedManifest, held: ReadonlyMap<string, number>): string | null {
  return [...manifest.blobs, ...manifest.manifests].find((digest) => !held.has(digest)) ?? null;
}

/** Stores a manifest row, its references and (for a tag reference) moves the tag, in one batch. */
export async function storeManifest(
  d: Db,
  repo: string,
  workspaceId: string,
  digest: string,
  sizeBytes: number,
  manifest: ParsedManifest,
  tag: string | null,
  nowMs: number,
): Promise<void> {
  const at = new Date(nowMs);
  const refs = [
    ...manifest.blobs.map((child) => ({ repository: repo, manifest: digest, child, kind: "blob" as const })),
    ...manifest.manifests.map((child) => ({ repository: repo, manifest: digest, child, kind: "manifest" as const })),
  ];
  const statements = [
    d.insert(registryRepositories).values({ name: repo, workspaceId }).onConflictDoNothing(),
    d
      .insert(registryManifests)
      .values({
        repository: repo,
        digest,
        mediaType: manifest.mediaType,
        sizeBytes,
        subject: manifest.subject,
        artifactType: manifest.artifactType,
        annotations: manifest.annotations,
        createdAt: at,
      })
      .onConflictDoNothing(),
    ...chunk(refs, 20).map((rows) => d.insert(registryManifestRefs).values(rows).onConflictDoNothing()),
    ...(tag
      ? [
          d
            .insert(registryTags)
            .values({ repository: repo, tag, digest, updatedAt: at })
            .onConflictDoUpdate({ target: [registryTags.repository, registryTags.tag], set: { digest, updatedAt: at } }),
        ]
      : []),
  ];
  await d.batch(statements as [(typeof statements)[number], ...typeof statements]);
}

/** Deletes a tag; true when it existed. */
export async function deleteTag(d: Db, repo: string, tag: string): Promise<boolean> {
  return (
    (
      await d
        .delete(registryTags)
        .where(and(eq(registryTags.repository, repo), eq(registryTags.tag, tag)))
        .returning()
    ).length > 0
  );
}

/** Deletes a manifest, its references and every tag pointing at it; true when it existed. */
export async function deleteManifest(d: Db, repo: string, digest: string): Promise<boolean> {
  const [deleted] = await d.batch([
    d
      .delete(registryManifests)
      .where(and(eq(registryManifests.repository, repo), eq(registryManifests.digest, digest)))
      .returning(),
    d.delete(registryManifestRefs).where(and(eq(registryManifestRefs.repository, repo), eq(registryManifestRefs.manifest, digest))),
    d.delete(registryTags).where(and(eq(registryTags.repository, repo), eq(registryTags.digest, digest))),
  ]);
  return deleted.length > 0;
}

/** Up to `limit` tag names after `last`, in lexical order. */
export async function listTags(d: Db, repo: string, last: string | null, limit: number): Promise<string[]> {
  const where = last === null ? eq(registryTags.repository, repo) : and(eq(registryTags.repository, repo), gt(registryTags.tag, last));
  const rows = await d.select({ tag: registryTags.tag }).from(registryTags).where(where).orderBy(asc(registryTags.tag)).limit(limit).all();
  return rows.map((r) => r.tag);
}

/** Manifests in `repo` whose subject is `digest` (the referrers API), optionally of one artifact type. */
export async function referrers(d: Db, repo: string, digest: string, artifactType: string | null) {
  const conditions = [eq(registryManifests.repository, repo), eq(registryManifests.subject, digest), isNotNull(registryManifests.subject)];
  if (artifactType) conditions.push(eq(registryManifests.artifactType, artifactType));
  return d
    .select({
      digest: registryManifests.digest,
      mediaType: registryManifests.mediaType,
      sizeBytes: registryManifests.sizeBytes,
      artifactType: registryManifests.artifactType,
      annotations: registryManifests.annotations,
    })
    .from(registryManifests)
    .where(and(...conditions))
    .orderBy(asc(registryManifests.digest))
    .limit(1000)
    .all();
}

/** True when the repository has any row at all (tags list on an unknown name is NAME_UNKNOWN). */
export async function repositoryExists(d: Db, repo: string): Promise<boolean> {
  return (
    (await d.select({ one: sql<number>`1` }).from(registryRepositories).where(eq(registryRepositories.name, repo)).get()) !== undefined
  );
}

/** R2 key of a manifest's bytes (content-addressed; written by the manifest routes). */
export const manifestObjectKey = (digest: string) => `manifests/sha256/${digestHex(digest)}`;

/**
 * Read-only: the bytes of manifest `digest` as this registry would serve them from `repo`, or
 * null when it would answer MANIFEST_UNKNOWN (no D1 row in that repository, or no bytes in R2).
 * The bytes were checked against the digest when they were written.
 */
export async function storedManifest(env: Env, repo: string, digest: string): Promise<{ row: ManifestRow; bytes: Uint8Array } | null> {
  if (classifyDigest(digest) !== "sha256") return null;
  const row = await findManifest(db(env), repo, digest);
  if (!row) return null;
  const object = await env.REGISTRY.get(manifestObjectKey(digest));
  if (!object) return null;
  return { row, bytes: new Uint8Array(await object.arrayBuffer()) };
}

/** Read-only: whether `repo` still serves manifest `digest` (its D1 row and its R2 bytes), without reading the bytes. */
export async function manifestServed(env: Env, repo: string, digest: string): Promise<boolean> {
  if (classifyDigest(digest) !== "sha256") return false;
  if (!(await findManifest(db(env), repo, digest))) return false;
  return (await env.REGISTRY.head(manifestObjectKey(digest))) !== null;
}
