/**
 * Deleting an image (`DELETE /v1/images/{id}`, docs/decisions/0018-image-deletion-and-gc.md):
 * the image record, its Idempotency-Key records and the Kiln tags pointing at it, with the OCI
 * tags they published (and, in each tag's repository, the image's manifest when no other tag
 * there points at it). Layers are not touched here: the layer cache and `<ws>/layers` are
 * shared by key, and the registry GC reclaims what no remaining image references after its
 * grace period (workers/registry/gc-layers.ts, durable-objects/layer-cache-gc.ts).
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { idempotencyKeys, images } from "../db/schema/images.ts";
import { tags } from "../db/schema/tags.ts";
import { deleteUntaggedManifest } from "../registry/link.ts";
import { db as registryDb } from "../registry/store.ts";
import { ociTarget, unpublishTag, workspaceNameById } from "./oci-tags.ts";
import { forgetResolved } from "./resolved-chains.ts";
import { loadImageView } from "./store.ts";

/** What a delete did, or why it did not. */
export type ImageDeleteResult =
  | { ok: true; workspaceName: string; tags: string[] }
  | { ok: false; error: { code: "not_found" } | { code: "image_building"; buildId: string | null } };

/**
 * Deletes image `imageId` of `workspaceId`. An image whose build has not ended is refused
 * (`image_building`): its build may be shared with other images and still writes results for
 * it; cancel it first. Deleting an image that is gone answers `not_found`.
 */
export async function deleteImage(env: Env, workspaceId: string, imageId: string): Promise<ImageDeleteResult> {
  const view = await loadImageView(env.DB, workspaceId, imageId);
  if (!view) return { ok: false, error: { code: "not_found" } };
  if (view.status === "queued" || view.status === "building")
    return { ok: false, error: { code: "image_building", buildId: view.buildId } };
  const d = drizzle(env.DB);
  // One transaction: the image and everything naming it go together.
  const [named, , gone] = await d.batch([
    d
      .delete(tags)
      .where(and(eq(tags.workspaceId, workspaceId), eq(tags.imageId, imageId)))
      .returning({ name: tags.name }),
    d.delete(idempotencyKeys).where(and(eq(idempotencyKeys.workspaceId, workspaceId), eq(idempotencyKeys.imageId, imageId))),
    d
      .delete(images)
      .where(and(eq(images.id, imageId), eq(images.workspaceId, workspaceId)))
      .returning({ id: images.id }),
  ]);
  // A concurrent delete won: it answers for the image; this one found nothing left to delete.
  if (gone.length === 0) return { ok: false, error: { code: "not_found" } };
  forgetResolved(workspaceId, imageId);
  const names = named.map((t) => t.name);
  const workspaceName = await workspaceNameById(env, workspaceId);
  const topDigest = view.status === "succeeded" ? (view.layers.at(-1)?.digest ?? null) : null;
  for (const name of names) {
    await unpublishTag(env, workspaceName, name);
    const target = ociTarget(workspaceName, name);
    // The image's manifest linked into the tag's repository goes with its last tag there.
    if (target && topDigest) await deleteUntaggedManifest(registryDb(env), target.repository, topDigest);
  }
  return { ok: true, workspaceName, tags: names };
}
