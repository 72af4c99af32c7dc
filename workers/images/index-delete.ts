/**
 * Deleting a multi-platform image (`DELETE /v1/image-indexes/{id}`, `kiln images rm ix-...`,
 * decision 0023): the index record, its push rows and the Kiln tags pointing at it, with the OCI
 * tags they published (and, in each tag's repository, the index and its platforms' manifests
 * when no other tag or index there still needs them), then each platform's image that no other
 * index names, as `DELETE /v1/images/{id}` deletes it. Refused while a platform builds or the
 * index's push runs. The index manifest in `<ws>/layers` goes with the registry GC once no
 * `image_indexes` row names it (workers/registry/gc-layers.ts).
 */
import { and, eq, ne } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { builds } from "../db/schema/builds.ts";
import { imageIndexes } from "../db/schema/image-indexes.ts";
import { imagePushes } from "../db/schema/pushes.ts";
import { tags } from "../db/schema/tags.ts";
import { deleteUntaggedManifest } from "../registry/link.ts";
import { db as registryDb } from "../registry/store.ts";
import { deleteImage, type ImageDeleteResult } from "./delete.ts";
import { indexNamesImage, loadImageIndexView } from "./image-index.ts";
import { ociTarget, unpublishTag, workspaceNameById } from "./oci-tags.ts";

/** What an index delete did (the platform images it deleted, with their own tags), or why it did not. */
export type IndexDeleteResult =
  | { ok: true; tags: string[]; platforms: { imageId: string; tags: string[] }[] }
  | { ok: false; error: Extract<ImageDeleteResult, { ok: false }>["error"] };

/** Deletes index `indexId` of `workspaceId` and what only it uses (see the module comment). */
export async function deleteImageIndex(env: Env, workspaceId: string, indexId: string): Promise<IndexDeleteResult> {
  const view = await loadImageIndexView(env, workspaceId, indexId);
  if (!view) return { ok: false, error: { code: "not_found" } };
  const running = view.platforms.find((p) => p.status === "queued" || p.status === "building");
  if (running) return { ok: false, error: { code: "image_building", buildId: running.buildId } };
  if (view.pushBuildId && view.pushes?.some((p) => p.status === "pending") && (await pushRunning(env, view.pushBuildId)))
    return { ok: false, error: { code: "image_building", buildId: view.pushBuildId } };
  const d = drizzle(env.DB);
  const [named, , gone] = await d.batch([
    d
      .delete(tags)
      .where(and(eq(tags.workspaceId, workspaceId), eq(tags.imageId, indexId)))
      .returning({ name: tags.name }),
    d.delete(imagePushes).where(and(eq(imagePushes.workspaceId, workspaceId), eq(imagePushes.imageId, indexId))),
    d
      .delete(imageIndexes)
      .where(and(eq(imageIndexes.id, indexId), eq(imageIndexes.workspaceId, workspaceId)))
      .returning({ id: imageIndexes.id }),
  ]);
  if (gone.length === 0) return { ok: false, error: { code: "not_found" } };
  const names = named.map((t) => t.name);
  const workspaceName = await workspaceNameById(env, workspaceId);
  const children = view.platforms.flatMap((p) => (p.digest ? [p.digest] : []));
  for (const name of names) {
    await unpublishTag(env, workspaceName, name);
    const target = ociTarget(workspaceName, name);
    if (!target || !view.digest) continue;
    // The index first: its children are kept while an index of the repository names them.
    await deleteUntaggedManifest(registryDb(env), target.repository, view.digest);
    for (const child of children) await deleteUntaggedManifest(registryDb(env), target.repository, child);
  }
  const platforms: { imageId: string; tags: string[] }[] = [];
  for (const { imageId } of view.platforms) {
    if (await namedByAnotherIndex(env, workspaceId, indexId, imageId)) continue;
    const result = await deleteImage(env, workspaceId, imageId);
    if (result.ok) platforms.push({ imageId, tags: result.tags });
  }
  return { ok: true, tags: names, platforms };
}

// The index's push build exists and has not ended (one never started has nothing to cancel).
async function pushRunning(env: Env, buildId: string): Promise<boolean> {
  const row = await drizzle(env.DB).select({ status: builds.status }).from(builds).where(eq(builds.id, buildId)).get();
  return row !== undefined && !["succeeded", "failed", "cancelled", "timeout"].includes(row.status);
}

async function namedByAnotherIndex(env: Env, workspaceId: string, indexId: string, imageId: string): Promise<boolean> {
  const row = await drizzle(env.DB)
    .select({ id: imageIndexes.id })
    .from(imageIndexes)
    .where(and(eq(imageIndexes.workspaceId, workspaceId), ne(imageIndexes.id, indexId), indexNamesImage(imageId)))
    .get();
  return row !== undefined;
}
