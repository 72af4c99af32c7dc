/**
 * The workspace view's data (decision 0021): a workspace's recent images, newest first, with
 * each one's status, build duration, tags and the token that submitted it, filtered by
 * status, tag and time. Status is derived by the same pure `imageView` as the API, so it is
 * filtered after the read: a page scans at most `SCAN_ROWS` rows and continues from the last
 * row it scanned, so paging through finds every match even when a page shows few.
 */
import { and, desc, eq, gte, lt, or, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { buildLayers, builds } from "../db/schema/builds.ts";
import { images } from "../db/schema/images.ts";
import { layers } from "../db/schema/layers.ts";
import { tags } from "../db/schema/tags.ts";
import { tokens } from "../db/schema/workspaces.ts";
import { type ImageStatus, imageView, type LayerResultRow } from "./view.ts";

/** Rows one page reads at most. */
export const SCAN_ROWS = 100;

/** What the view can filter by. */
export type RecentFilters = {
  status?: ImageStatus;
  /** Substring of a tag name the image carries. */
  tag?: string;
  /** Only images created at or after this time (epoch ms). */
  sinceMs?: number;
  /** Continue after this row (the previous page's `next`). */
  after?: { createdAtMs: number; id: string };
};

/** One row of the view. */
export type RecentImage = {
  id: string;
  status: ImageStatus;
  buildId: string | null;
  createdAt: Date;
  layerCount: number;
  /** The build's wall time so far (ms): creation to finish, or to `now` while it runs; null when fully cached. */
  durationMs: number | null;
  failureReason: string | null;
  tags: { name: string; public: boolean }[];
  /** The submitting token's id and name (`bootstrap` has no row); null for rows older than migration 0004. */
  submittedBy: { id: string; name: string | null } | null;
};

/** A page of the view and where the next one starts (null: nothing older). */
export type RecentPage = { images: RecentImage[]; next: { createdAtMs: number; id: string } | null };

/** Reads one page of `workspaceId`'s recent images matching `filters`. Two D1 round trips. */
export async function recentImages(db: D1Database, workspaceId: string, filters: RecentFilters, nowMs: number): Promise<RecentPage> {
  const d = drizzle(db);
  const after = filters.after;
  const older = after
    ? or(lt(images.createdAt, new Date(after.createdAtMs)), and(eq(images.createdAt, new Date(after.createdAtMs)), lt(images.id, after.id)))
    : undefined;
  const tagged = filters.tag
    ? sql`EXISTS (SELECT 1 FROM ${tags} WHERE ${tags.workspaceId} = ${images.workspaceId} AND ${tags.imageId} = ${images.id}
             AND instr(${tags.name}, ${filters.tag}) > 0)`
    : undefined;
  const since = filters.sinceMs === undefined ? undefined : gte(images.createdAt, new Date(filters.sinceMs));
  const rows = await d
    .select()
    .from(images)
    .where(and(eq(images.workspaceId, workspaceId), older, tagged, since))
    .orderBy(desc(images.createdAt), desc(images.id))
    .limit(SCAN_ROWS + 1);
  const scanned = rows.slice(0, SCAN_ROWS);
  const json = (values: Iterable<string>) => JSON.stringify([...new Set(values)]);
  const buildIds = json(scanned.flatMap((r) => (r.buildId ? [r.buildId] : [])));
  const inList = (column: unknown, list: string) => sql`${column} IN (SELECT value FROM json_each(${list}))`;
  const [buildRows, ownRows, cacheRows, tagRows, tokenRows] = await d.batch([
    d.select().from(builds).where(inList(builds.id, buildIds)),
    d.select().from(buildLayers).where(inList(buildLayers.buildId, buildIds)),
    d
      .select()
      .from(layers)
      .where(and(eq(layers.workspaceId, workspaceId), inList(layers.key, json(scanned.map((r) => r.topKey))))),
    d
      .select({ imageId: tags.imageId, name: tags.name, public: tags.public })
      .from(tags)
      .where(and(eq(tags.workspaceId, workspaceId), inList(tags.imageId, json(scanned.map((r) => r.id)))))
      .orderBy(tags.name),
    d
      .select({ id: tokens.id, name: tokens.name })
      .from(tokens)
      .where(inList(tokens.id, json(scanned.flatMap((r) => (r.submittedByTokenId ? [r.submittedByTokenId] : []))))),
  ]);
  const buildById = new Map(buildRows.map((b) => [b.id, b]));
  const cache = new Map<string, LayerResultRow>(cacheRows.map((r) => [r.key, r]));
  const tokenName = new Map(tokenRows.map((t) => [t.id, t.name]));
  const shown: RecentImage[] = [];
  for (const image of scanned) {
    const build = image.buildId ? (buildById.get(image.buildId) ?? null) : null;
    const own = new Map<string, LayerResultRow>(ownRows.filter((r) => r.buildId === image.buildId).map((r) => [r.key, r]));
    const view = imageView(image, build, own, cache);
    if (filters.status && view.status !== filters.status) continue;
    const by = image.submittedByTokenId;
    shown.push({
      id: image.id,
      status: view.status,
      buildId: image.buildId,
      createdAt: image.createdAt,
      layerCount: image.layerKeys.length,
      durationMs: build ? (build.finishedAt?.getTime() ?? nowMs) - build.createdAt.getTime() : null,
      failureReason: view.failure?.reason ?? null,
      tags: tagRows.filter((t) => t.imageId === image.id).map((t) => ({ name: t.name, public: t.public })),
      submittedBy: by ? { id: by, name: by === "bootstrap" ? "bootstrap admin token" : (tokenName.get(by) ?? null) } : null,
    });
  }
  const last = scanned.at(-1);
  return { images: shown, next: rows.length > SCAN_ROWS && last ? { createdAtMs: last.createdAt.getTime(), id: last.id } : null };
}
