/**
 * Multi-platform images (decision 0023): an index row groups one image per platform. Its status
 * is derived from the images; the first read after all of them succeeded writes the OCI image
 * index next to their manifests in `<ws>/layers` and records its digest. The write is
 * content-addressed and idempotent, so concurrent readers at worst write the same bytes twice.
 */
import type { ImageIndexRequest, ImageIndexView, ImageStatus, Platform, PushView } from "@kiln-build/protocol";
import { digestHex, digestOfBytes } from "@kiln-build/protocol";
import { and, desc, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { imageIndexes, type StoredIndexPush } from "../db/schema/image-indexes.ts";
import { images } from "../db/schema/images.ts";
import { notFound } from "../errors.ts";
import { log } from "../log.ts";
import { parseManifest } from "../registry/manifest.ts";
import { blobIn, db, manifestObjectKey, storedManifest, storeManifest } from "../registry/store.ts";
import { configPlatform, indexManifestBytes, type PlatformManifest } from "./index-manifest.ts";
import { imageTags, publishIndexTags } from "./oci-tags.ts";
import { checkPushSecrets, insertPendingPushes, loadPushViews, pushPlan } from "./pushes.ts";
import { loadImageView } from "./store.ts";

type PlatformView = ImageIndexView["platforms"][number];

/**
 * Records an index of `request.images` (every one must be an image of the workspace); returns
 * its id. With `push`, its targets are written `pending` under the index's id, to be pushed by
 * build `pushBuildId` once the index is assembled (durable-objects/index-push.ts).
 */
export async function createImageIndex(env: Env, workspaceId: string, request: ImageIndexRequest, pushBuildId: string): Promise<string> {
  const d = drizzle(env.DB);
  for (const { imageId } of request.images) {
    const row = await d
      .select({ id: images.id })
      .from(images)
      .where(and(eq(images.id, imageId), eq(images.workspaceId, workspaceId)))
      .get();
    if (!row) throw notFound(`Image '${imageId}'`);
  }
  const id = `ix-${crypto.randomUUID().replaceAll("-", "").slice(0, 26)}`;
  const now = new Date();
  const push = request.push ? { ...pushPlan({ ...request, push: request.push }, id, pushBuildId, now), buildId: pushBuildId } : null;
  if (push) await checkPushSecrets(env, workspaceId, push);
  await d.insert(imageIndexes).values({
    id,
    workspaceId,
    entries: request.images.map(({ platform, imageId }) => ({ platform, imageId })),
    push: push && { buildId: push.buildId, targets: push.targets, labels: push.labels, annotations: push.annotations },
    createdAt: now,
  });
  if (push) await insertPendingPushes(env.DB, workspaceId, pushBuildId, push);
  return id;
}

/** The index's view (assembling and storing the OCI index when every platform has just succeeded), or null when not the workspace's. */
export async function loadImageIndexView(env: Env, workspaceId: string, id: string, origin?: string): Promise<ImageIndexView | null> {
  return (await loadImageIndex(env, workspaceId, id, origin))?.view ?? null;
}

/**
 * The index's view and its stored push (null without push). With `origin`, the view lists the
 * Kiln tags pointing at the index and their OCI references. Assembling the index publishes
 * those tags (a tag written before the index existed points at it from then on).
 */
export async function loadImageIndex(
  env: Env,
  workspaceId: string,
  id: string,
  origin?: string,
): Promise<{ view: ImageIndexView; push: StoredIndexPush | null } | null> {
  const d = drizzle(env.DB);
  const row = await d
    .select()
    .from(imageIndexes)
    .where(and(eq(imageIndexes.id, id), eq(imageIndexes.workspaceId, workspaceId)))
    .get();
  if (!row) return null;
  const platforms: PlatformView[] = [];
  for (const entry of row.entries) {
    const view = await loadImageView(env.DB, workspaceId, entry.imageId);
    const top = view?.layers.at(-1);
    platforms.push({
      platform: entry.platform as Platform,
      imageId: entry.imageId,
      buildId: view?.buildId ?? null,
      // A platform's image deleted since is as good as failed: the index can no longer be made.
      status: view?.status ?? "failed",
      digest: view?.status === "succeeded" ? (top?.digest ?? null) : null,
      reference: view?.status === "succeeded" ? (top?.reference ?? null) : null,
    });
  }
  const status = indexStatus(platforms.map((p) => p.status));
  let digest = row.digest;
  let message = status === "succeeded" || status === "queued" || status === "building" ? null : failedMessage(platforms);
  if (status === "succeeded" && digest === null) {
    const assembled = await assembleIndex(env, workspaceId, platforms);
    if (assembled.ok) {
      digest = assembled.digest;
      await d.update(imageIndexes).set({ digest }).where(eq(imageIndexes.id, id));
      await publishIndexTags(env, workspaceId, id, digest);
    } else message = assembled.message;
  }
  const repository = platforms[0]?.reference?.split("@")[0] ?? null;
  const finalStatus = message === null ? status : status === "succeeded" ? "failed" : status;
  const [tagList, pushes] = await Promise.all([
    origin === undefined ? undefined : imageTags(env, origin, workspaceId, id),
    row.push ? loadPushViews(env.DB, workspaceId, id) : undefined,
  ]);
  const view: ImageIndexView = {
    id: row.id,
    status: finalStatus,
    digest,
    reference: digest && repository ? `${repository}@${digest}` : null,
    platforms,
    message,
    createdAt: row.createdAt.toISOString(),
    ...(tagList && tagList.length > 0 ? { tags: tagList } : {}),
    ...(pushes ? { pushes: indexPushViews(pushes, finalStatus), pushBuildId: row.push?.buildId ?? null } : {}),
  };
  return { view, push: row.push };
}

/** A target still pending when the index can no longer be assembled will not be pushed: shown failed, with why. */
export function indexPushViews(pushes: readonly PushView[], status: ImageStatus): PushView[] {
  const ended = status === "failed" || status === "cancelled" || status === "timeout";
  return pushes.map((p) =>
    p.status === "pending" && ended ? { ...p, status: "failed", message: `not pushed: the multi-platform image ${status}` } : p,
  );
}

/** The SQL condition "this index has `imageId` among its platforms" (its entries are a JSON array). */
export function indexNamesImage(imageId: string) {
  return sql`EXISTS (SELECT 1 FROM json_each(${imageIndexes.entries}) WHERE json_extract(value, '$.imageId') = ${imageId})`;
}

/** The newest index of the workspace that `imageId` is a platform of (the status page shows its platforms), or null. */
export async function indexOfImage(env: Env, workspaceId: string, imageId: string): Promise<ImageIndexView | null> {
  const row = await drizzle(env.DB)
    .select({ id: imageIndexes.id })
    .from(imageIndexes)
    .where(and(eq(imageIndexes.workspaceId, workspaceId), indexNamesImage(imageId)))
    .orderBy(desc(imageIndexes.createdAt))
    .get();
  return row ? loadImageIndexView(env, workspaceId, row.id) : null;
}

/** The one status of an index: the first platform's failure, else building while any builds, else queued while any waits, else succeeded. */
export function indexStatus(statuses: readonly ImageStatus[]): ImageStatus {
  const failed = statuses.find((s) => s === "failed" || s === "cancelled" || s === "timeout");
  if (failed) return failed;
  if (statuses.includes("building")) return "building";
  if (statuses.includes("queued")) return "queued";
  return "succeeded";
}

function failedMessage(platforms: readonly PlatformView[]): string {
  const bad = platforms.filter((p) => p.status !== "succeeded" && p.status !== "queued" && p.status !== "building");
  return `The ${bad.map((p) => `${p.platform} image (${p.imageId}, ${p.status})`).join(" and ")} did not succeed; the index has no digest.`;
}

type Assembled = { ok: true; digest: string } | { ok: false; message: string };

/** Writes the OCI index of the platforms' manifests to their repository, checking each is of its platform. */
async function assembleIndex(env: Env, workspaceId: string, platforms: readonly PlatformView[]): Promise<Assembled> {
  const repository = platforms[0]?.reference?.split("@")[0]?.split("/").slice(1).join("/");
  if (!repository || platforms.some((p) => p.reference?.split("@")[0]?.split("/").slice(1).join("/") !== repository))
    return { ok: false, message: "The platforms' images are not in one repository; the index cannot refer to them." };
  const entries: PlatformManifest[] = [];
  for (const p of platforms) {
    const stored = await storedManifest(env, repository, p.digest!);
    if (!stored) return { ok: false, message: `The ${p.platform} image's manifest ${p.digest} is no longer in the registry.` };
    const actual = await manifestPlatform(env, repository, stored.bytes);
    if (actual !== p.platform)
      return { ok: false, message: `The image filed under ${p.platform} (${p.imageId}) was built for ${actual ?? "an unknown platform"}.` };
    entries.push({ platform: p.platform, digest: p.digest!, sizeBytes: stored.row.sizeBytes, mediaType: stored.row.mediaType });
  }
  const bytes = indexManifestBytes(entries);
  const digest = digestOfBytes(await crypto.subtle.digest("SHA-256", bytes));
  const parsed = parseManifest(bytes, undefined);
  if (!parsed.ok) throw new Error(`assembled index does not parse: ${parsed.message}`);
  await env.REGISTRY.put(manifestObjectKey(digest), bytes, {
    sha256: digestHex(digest),
    httpMetadata: { contentType: parsed.manifest.mediaType },
  });
  await storeManifest(db(env), repository, workspaceId, digest, bytes.byteLength, parsed.manifest, null, Date.now());
  log("info", "image index assembled", { workspaceId, repository, digest, platforms: entries.map((e) => e.platform) });
  return { ok: true, digest };
}

/** The `os/architecture` an image manifest's config declares, read from the registry's blob store. */
async function manifestPlatform(env: Env, repository: string, manifestBytes: Uint8Array): Promise<string | null> {
  let configDigest: unknown;
  try {
    configDigest = (JSON.parse(new TextDecoder().decode(manifestBytes)) as { config?: { digest?: unknown } }).config?.digest;
  } catch {
    return null;
  }
  if (typeof configDigest !== "string") return null;
  const blob = await blobIn(db(env), repository, configDigest);
  const object = blob && (await env.REGISTRY.get(blob.r2Key));
  if (!object) return null;
  try {
    return configPlatform(await object.json());
  } catch {
    return null;
  }
}
