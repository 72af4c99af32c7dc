/**
 * `GET /v1/images`: the workspace's images, newest first, with each one's status (what
 * `kiln images ls` prints). One D1 batch per page: the image rows, their builds, the
 * builds' results and the cache rows of the top layers; status comes from the same pure
 * `imageView` as `GET /v1/images/:id`, so the two never disagree.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, or, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { buildLayers, builds } from "../db/schema/builds.ts";
import { images } from "../db/schema/images.ts";
import { layers } from "../db/schema/layers.ts";
import { badRequest } from "../errors.ts";
import { imageView, type LayerResultRow } from "../images/view.ts";
import { bearerSecurity, errorResponses, iso, registerBearerScheme } from "./common.ts";

/** The image list sub-app, mounted at the root. */
export const imagesListApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(imagesListApp);

const Status = z.enum(["queued", "building", "succeeded", "failed", "cancelled", "timeout"]);
const ImageSummarySchema = z
  .object({
    id: z.string(),
    status: Status,
    buildId: z.string().nullable(),
    layerCount: z.number().int(),
    topKey: z.string(),
    createdAt: z.string(),
  })
  .openapi("ImageSummary");
const ImageListSchema = z
  .object({
    images: z.array(ImageSummarySchema),
    nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last one." }),
  })
  .openapi("ImageList");

/** Opaque page cursor: the last row's creation time and id (ids break ties within a millisecond). */
export function encodeCursor(createdAtMs: number, id: string): string {
  return btoa(`${createdAtMs}:${id}`).replace(/=+$/, "");
}

/** Parses a cursor from `encodeCursor`, or null when it is not one. */
export function decodeCursor(cursor: string): { createdAtMs: number; id: string } | null {
  try {
    const match = /^(\d{1,16}):(im-[A-Za-z0-9_-]{1,60})$/.exec(atob(cursor));
    return match ? { createdAtMs: Number(match[1]), id: match[2]! } : null;
  } catch {
    return null;
  }
}

imagesListApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/images",
    operationId: "listImages",
    tags: ["images"],
    summary: "List images, newest first",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:read")] as const,
    request: {
      query: z.object({
        limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ type: "integer" }),
        cursor: z.string().max(128).optional(),
      }),
    },
    responses: {
      200: { description: "A page of images.", content: { "application/json": { schema: ImageListSchema } } },
      ...errorResponses(400, 401, 403),
    },
  }),
  async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const after = cursor === undefined ? null : decodeCursor(cursor);
    if (cursor !== undefined && after === null) throw badRequest("Invalid cursor; pass back the `nextCursor` of a previous page.");
    const workspaceId = await workspaceOf(c);
    const d = drizzle(c.env.DB);
    const older = after
      ? or(
          lt(images.createdAt, new Date(after.createdAtMs)),
          and(eq(images.createdAt, new Date(after.createdAtMs)), lt(images.id, after.id)),
        )
      : undefined;
    const rows = await d
      .select()
      .from(images)
      .where(and(eq(images.workspaceId, workspaceId), older))
      .orderBy(desc(images.createdAt), desc(images.id))
      .limit(limit + 1);
    const page = rows.slice(0, limit);
    const buildIds = JSON.stringify([...new Set(page.flatMap((r) => (r.buildId ? [r.buildId] : [])))]);
    const topKeys = JSON.stringify([...new Set(page.map((r) => r.topKey))]);
    const [buildRows, ownRows, cacheRows] = await d.batch([
      d.select().from(builds).where(sql`${builds.id} IN (SELECT value FROM json_each(${buildIds}))`),
      d.select().from(buildLayers).where(sql`${buildLayers.buildId} IN (SELECT value FROM json_each(${buildIds}))`),
      d
        .select()
        .from(layers)
        .where(and(eq(layers.workspaceId, workspaceId), sql`${layers.key} IN (SELECT value FROM json_each(${topKeys}))`)),
    ]);
    const buildById = new Map(buildRows.map((b) => [b.id, b]));
    const cache = new Map<string, LayerResultRow>(cacheRows.map((r) => [r.key, r]));
    const summaries = page.map((image) => {
      const own = new Map<string, LayerResultRow>(ownRows.filter((r) => r.buildId === image.buildId).map((r) => [r.key, r]));
      // Only the top layer decides an image's status; the cache map holds just the top keys.
      const view = imageView(image, image.buildId ? (buildById.get(image.buildId) ?? null) : null, own, cache);
      return {
        id: image.id,
        status: view.status,
        buildId: image.buildId,
        layerCount: image.layerKeys.length,
        topKey: image.topKey,
        createdAt: iso(image.createdAt),
      };
    });
    const last = page.at(-1);
    const nextCursor = rows.length > limit && last ? encodeCursor(last.createdAt.getTime(), last.id) : null;
    return c.json({ images: summaries, nextCursor }, 200);
  },
);
