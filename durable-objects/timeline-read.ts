/**
 * Reading a build's timeline for the API and the status page: the record from the build's
 * object while it holds the build, from the R2 log archive once the build ended (the object
 * is deleted 7 days later), assembled by timeline.ts with the build that produced each cached
 * layer (D1 `layers.build_id`). Only the caller's workspace's builds are found.
 */
import type { BuildTimeline } from "@kiln-build/protocol";
import { and, eq, inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { builds } from "../workers/db/schema/builds.ts";
import { images } from "../workers/db/schema/images.ts";
import { layers } from "../workers/db/schema/layers.ts";
import { type TimelineRecord, timelineArchiveKey } from "./build-timeline-store.ts";
import { assembleTimeline } from "./timeline.ts";

/** A timeline, or why there is none: no such build in the workspace, or one that ended before timelines were recorded. */
export type TimelineAnswer = { ok: true; timeline: BuildTimeline } | { ok: false; error: "not_found" | "unavailable" };

/** The timeline of `buildId` in `workspaceId`. */
export async function loadBuildTimeline(env: Env, workspaceId: string, buildId: string): Promise<TimelineAnswer> {
  const row = await drizzle(env.DB)
    .select({ logArchive: builds.logArchive })
    .from(builds)
    .where(and(eq(builds.id, buildId), eq(builds.workspaceId, workspaceId)))
    .get();
  if (!row) return { ok: false, error: "not_found" };
  let record: TimelineRecord | null = null;
  if (row.logArchive === null) record = await env.BUILD.getByName(buildId).timelineRecord();
  // Archived (or archived while we asked): the object may be gone, R2 has the record.
  record ??= await archivedRecord(env, row.logArchive ?? (await archiveOf(env, buildId)));
  if (!record) return { ok: false, error: "unavailable" };
  record = { ...record, layers: [...(await cachedPrefix(env, workspaceId, buildId, record)), ...record.layers] };
  const cachedKeys = record.layers.filter((l) => l.state === "cached").map((l) => l.key);
  const producers =
    cachedKeys.length === 0
      ? []
      : await drizzle(env.DB)
          .select({ key: layers.key, buildId: layers.buildId })
          .from(layers)
          .where(and(eq(layers.workspaceId, workspaceId), inArray(layers.key, cachedKeys)));
  const byKey = new Map(producers.map((p) => [p.key, p.buildId]));
  return { ok: true, timeline: assembleTimeline(record, (key) => byKey.get(key) ?? null) };
}

/**
 * The layers below the build's first, cached when it was submitted: the build knows only the
 * layers it claimed, its images know the whole chain (every image of a build shares its top
 * key, and so its whole chain).
 */
async function cachedPrefix(env: Env, workspaceId: string, buildId: string, record: TimelineRecord): Promise<TimelineRecord["layers"]> {
  const first = record.layers[0]?.index ?? 0;
  if (first === 0) return [];
  const image = await drizzle(env.DB)
    .select({ layerKeys: images.layerKeys })
    .from(images)
    .where(and(eq(images.workspaceId, workspaceId), eq(images.buildId, buildId)))
    .get();
  return (image?.layerKeys ?? []).slice(0, first).map((key, index) => ({ index, key, state: "cached" }));
}

async function archiveOf(env: Env, buildId: string): Promise<string | null> {
  const row = await drizzle(env.DB).select({ logArchive: builds.logArchive }).from(builds).where(eq(builds.id, buildId)).get();
  return row?.logArchive ?? null;
}

async function archivedRecord(env: Env, prefix: string | null): Promise<TimelineRecord | null> {
  if (prefix === null) return null;
  const object = await env.LOGS.get(timelineArchiveKey(prefix));
  if (!object) return null;
  // Written by the build's own object (build-outbox.ts); a record without its lists is not one.
  const parsed = (await object.json()) as Partial<TimelineRecord> | null;
  return parsed && Array.isArray(parsed.marks) && Array.isArray(parsed.phases) && Array.isArray(parsed.layers)
    ? (parsed as TimelineRecord)
    : null;
}
