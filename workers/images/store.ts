/**
 * D1 access for images: the one-statement cached resolve, the cached-prefix lookup, image rows,
 * Idempotency-Key records, and loading an image's view. Also what badges and tags use to read
 * an image's status (`loadImageView`), so status is derived in exactly one place.
 */
import canonicalize from "canonicalize";
import { and, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type BuildStatusColumn, buildLayers, builds } from "../db/schema/builds.ts";
import { idempotencyKeys, images, type StoredRuntimeMount } from "../db/schema/images.ts";
import { layers } from "../db/schema/layers.ts";
import { webhookSubscriptions } from "../db/schema/webhooks.ts";
import { workspaces } from "../db/schema/workspaces.ts";
import { type ImageView, imageView, type LayerResultRow } from "./view.ts";

/** A new image row. */
export type NewImage = {
  id: string;
  workspaceId: string;
  layerKeys: string[];
  buildId: string | null;
  mode: "normal" | "force" | "ignore";
  freshFrom: number;
  runtimeMounts: StoredRuntimeMount[];
  /** The API token that submitted it (`AuthContext.tokenId`). */
  submittedByTokenId?: string | null;
};

/** What one read knows about a chain: its cache rows, whether its cached image row exists, the workspace's name, its webhook count. */
export type ChainProbe = { cached: Map<string, LayerResultRow>; known: boolean; workspaceName: string | null; webhooks: number };

/**
 * Everything a submission needs from D1, in ONE read: the chain's cache rows, whether the
 * chain's content-addressed image row (`cachedImageId`) exists, the workspace's name and how
 * many webhook subscriptions it has (a new cached image notifies them). A
 * fully cached chain is answered from it alone; it is a read, so a D1 replica can serve it.
 * Keys travel as one JSON parameter (`json_each`): D1 binds at most 100 parameters and a chain
 * may have 256 layers.
 */
export async function probeChain(db: D1Database, workspaceId: string, keys: string[], cachedId: string): Promise<ChainProbe> {
  const row = await drizzle(db).get<{ cached: string; known: number; name: string | null; webhooks: number }>(sql`
    SELECT (SELECT json_group_array(json_object('key', ${layers.key}, 'digest', ${layers.digest}, 'reference', ${layers.reference},
                                                'sizeBytes', ${layers.sizeBytes}, 'buildId', ${layers.buildId}))
              FROM ${layers} WHERE ${layers.workspaceId} = ${workspaceId}
              AND ${layers.key} IN (SELECT value FROM json_each(${JSON.stringify(keys)}))) AS cached,
           (SELECT count(*) FROM ${images} WHERE ${images.id} = ${cachedId}) AS known,
           (SELECT ${workspaces.name} FROM ${workspaces} WHERE ${workspaces.id} = ${workspaceId}) AS name,
           (SELECT count(*) FROM ${webhookSubscriptions} WHERE ${webhookSubscriptions.workspaceId} = ${workspaceId}) AS webhooks`);
  const rows = JSON.parse(row?.cached ?? "[]") as LayerResultRow[];
  return {
    cached: new Map(rows.map((r) => [r.key, r])),
    known: (row?.known ?? 0) > 0,
    workspaceName: row?.name ?? null,
    webhooks: row?.webhooks ?? 0,
  };
}

/**
 * The id of a fully cached chain's image: content-addressed (workspace, top key, runtime
 * mounts), so every cached resolve of the same chain answers with the same image, written once.
 */
export async function cachedImageId(workspaceId: string, topKey: string, runtimeMounts: StoredRuntimeMount[]): Promise<string> {
  const text = canonicalize({ workspaceId, topKey, runtimeMounts }) ?? "";
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  return `im-${[...digest.slice(0, 26)].map((b) => alphabet[b & 31]).join("")}`;
}

/** Inserts an image row (a no-op if a content-addressed one exists already). */
export async function insertImage(db: D1Database, image: NewImage): Promise<void> {
  await drizzle(db)
    .insert(images)
    .values({ ...image, topKey: image.layerKeys.at(-1)!, createdAt: new Date() })
    .onConflictDoNothing();
}

/** An image's view, or null when the workspace has no such image. Two round trips. */
export async function loadImageView(
  db: D1Database,
  workspaceId: string,
  imageId: string,
): Promise<(ImageView & { runtimeMounts: StoredRuntimeMount[] }) | null> {
  const image = await drizzle(db)
    .select()
    .from(images)
    .where(and(eq(images.id, imageId), eq(images.workspaceId, workspaceId)))
    .get();
  if (!image) return null;
  const [buildRows, ownRows, cacheRows] = await drizzle(db).batch(viewQueries(db, image));
  return present(image, buildRows[0] ?? null, ownRows, cacheRows);
}

/** Inserts an image row and reads its build's status in the same round trip (null before the build's row exists). */
export async function insertImageWithBuildStatus(db: D1Database, image: NewImage): Promise<BuildStatusColumn | null> {
  const d = drizzle(db);
  const [, rows] = await d.batch([
    d.insert(images).values({ ...image, topKey: image.layerKeys.at(-1)!, createdAt: new Date() }),
    d
      .select({ status: builds.status })
      .from(builds)
      .where(eq(builds.id, image.buildId ?? "")),
  ]);
  return rows[0]?.status ?? null;
}

function viewQueries(db: D1Database, image: { workspaceId: string; buildId: string | null; layerKeys: string[] }) {
  const d = drizzle(db);
  const buildId = image.buildId ?? "";
  return [
    d.select().from(builds).where(eq(builds.id, buildId)),
    d.select().from(buildLayers).where(eq(buildLayers.buildId, buildId)),
    d
      .select()
      .from(layers)
      .where(
        and(
          eq(layers.workspaceId, image.workspaceId),
          sql`${layers.key} IN (SELECT value FROM json_each(${JSON.stringify(image.layerKeys)}))`,
        ),
      ),
  ] as const;
}

function present(
  image: Parameters<typeof imageView>[0] & { runtimeMounts: StoredRuntimeMount[] },
  build: Parameters<typeof imageView>[1],
  ownRows: LayerResultRow[],
  cacheRows: LayerResultRow[],
): ImageView & { runtimeMounts: StoredRuntimeMount[] } {
  const own = new Map(ownRows.map((r) => [r.key, r]));
  const cache = new Map(cacheRows.map((r) => [r.key, r]));
  return { ...imageView(image, build, own, cache), runtimeMounts: image.runtimeMounts };
}

/** Idempotency keys are honoured this long. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60_000;

/** The image a live Idempotency-Key points at, with the hash of the body that reserved it. */
export async function findIdempotencyKey(
  db: D1Database,
  workspaceId: string,
  key: string,
): Promise<{ requestHash: string; imageId: string } | null> {
  const row = await drizzle(db)
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.workspaceId, workspaceId), eq(idempotencyKeys.key, key)))
    .get();
  if (!row || row.createdAt.getTime() < Date.now() - IDEMPOTENCY_TTL_MS) return null;
  return { requestHash: row.requestHash, imageId: row.imageId };
}

/** Reserves an Idempotency-Key for `imageId`; false when another request holds it (an expired one is taken over). */
export async function reserveIdempotencyKey(
  db: D1Database,
  workspaceId: string,
  key: string,
  requestHash: string,
  imageId: string,
): Promise<boolean> {
  const now = Date.now();
  const row = await drizzle(db)
    .insert(idempotencyKeys)
    .values({ workspaceId, key, requestHash, imageId, createdAt: new Date(now) })
    .onConflictDoUpdate({
      target: [idempotencyKeys.workspaceId, idempotencyKeys.key],
      set: { requestHash, imageId, createdAt: new Date(now) },
      setWhere: sql`${idempotencyKeys.createdAt} < ${now - IDEMPOTENCY_TTL_MS}`,
    })
    .returning({ imageId: idempotencyKeys.imageId })
    .get();
  return row?.imageId === imageId;
}

/** Drops a reservation whose request failed, so a retry can use the key. */
/** Moves an Idempotency-Key reserved for `fromImageId` to `toImageId` (the content-addressed image of a cached chain). */
export async function repointIdempotencyKey(
  db: D1Database,
  workspaceId: string,
  key: string,
  fromImageId: string,
  toImageId: string,
): Promise<void> {
  await drizzle(db)
    .update(idempotencyKeys)
    .set({ imageId: toImageId })
    .where(and(eq(idempotencyKeys.workspaceId, workspaceId), eq(idempotencyKeys.key, key), eq(idempotencyKeys.imageId, fromImageId)));
}

export async function releaseIdempotencyKey(db: D1Database, workspaceId: string, key: string, imageId: string): Promise<void> {
  await drizzle(db)
    .delete(idempotencyKeys)
    .where(and(eq(idempotencyKeys.workspaceId, workspaceId), eq(idempotencyKeys.key, key), eq(idempotencyKeys.imageId, imageId)));
}
