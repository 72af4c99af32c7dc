/**
 * The public image status page: `GET /images/:id` and `GET /images/by-tag/:workspace/:tag`
 * (HTML from workers/status-page/render.ts), and the JSON its live script long-polls,
 * `GET .../logs?cursor=&waitSeconds=` -> `{ lines, cursor, done }`. No token: a page exists
 * only for an image a public tag points at. Anything else (unknown id or tag, private tag,
 * another workspace's name) takes the same path to the same 404, so the pages never reveal
 * which private images exist (as badges, decision 0009).
 *
 * The same page of any image of a workspace, public or not, is served to that workspace's
 * browser session at `GET /w/:workspace/images/:id` (and `.../logs`), never cached (decision 0021).
 *
 * A multi-platform image's id (`ix-...`), or a tag pointing at one, gets the index's own page
 * (workers/status-page/index-page.ts): each platform's status and digest with a link to its
 * image page, which is public while a public tag points at the index.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { TagName, WorkspaceName } from "@kiln-build/protocol";
import { and, asc, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Context } from "hono";
import { readArchive } from "../../durable-objects/log-archive.ts";
import { loadBuildTimeline } from "../../durable-objects/timeline-read.ts";
import type { AppEnv } from "../app-env.ts";
import { requirePageSession } from "../auth/page-access.ts";
import { sessionPath, sessionTokenFrom } from "../auth/page-session.ts";
import { buildLayers, builds } from "../db/schema/builds.ts";
import { images } from "../db/schema/images.ts";
import { layers } from "../db/schema/layers.ts";
import { tags } from "../db/schema/tags.ts";
import { workspaces } from "../db/schema/workspaces.ts";
import { EDGE_TTL_HEADER, edgeCache, edgeTtlFor } from "../edge-cache.ts";
import { notFound } from "../errors.ts";
import { indexOfImage } from "../images/image-index.ts";
import { isIndexId, ociReference } from "../images/oci-tags.ts";
import { loadPushViews } from "../images/pushes.ts";
import { loadImageView } from "../images/store.ts";
import type { ImageView } from "../images/view.ts";
import { indexPageRunning } from "../status-page/index-page.ts";
import { type IndexPageTarget, indexPage, publicIndexById, publicIndexByTag, publicIndexOfImage } from "../status-page/index-page-data.ts";
import { type ChunkLike, chunksToLines } from "../status-page/log-lines.ts";
import { htmlPageHeaders } from "../status-page/page-style.ts";
import { renderStatusPage } from "../status-page/render.ts";
import { errorResponses } from "./common.ts";

/** The status-page sub-app, mounted at the root. */
export const statusPageApp = new OpenAPIHono<AppEnv>();
// Tag pages of finished builds are served from the edge; tag writes purge them (edge-cache.ts).
// `/images/:id` is not cached: moving a tag away must hide the old image's page at once.
statusPageApp.use("/images/by-tag/:workspace/:tag", edgeCache);

// The first page render shows at most this much log; the live script and a reload get the rest.
const PAGE_LOG_CHUNKS = 2000;
const POLL_LOG_CHUNKS = 500;
const LOG_BYTES = 1024 * 1024;
const MAX_WAIT_SECONDS = 25;

const IdParams = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" }, example: "im-abc" }),
});
const TagParams = z.object({
  workspace: WorkspaceName.openapi({ param: { name: "workspace", in: "path" } }),
  tag: TagName.openapi({ param: { name: "tag", in: "path" } }),
});
const PollQuery = z.object({
  cursor: z.coerce.number().int().min(0).default(0).openapi({ type: "integer" }),
  waitSeconds: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS).default(0).openapi({ type: "integer" }),
});
const LogLinesSchema = z
  .object({
    lines: z.array(z.object({ layer: z.number().int().nullable(), stream: z.enum(["stdout", "stderr", "system"]), text: z.string() })),
    cursor: z.number().int(),
    done: z.boolean(),
  })
  .openapi("StatusPageLog");
const html = { "text/html": { schema: z.string() } };
const pageDescription =
  "HTML: layers with status, digests and timings, the external registries it was pushed to, the badge Markdown and the build log. Works without JavaScript; with it, a running build's log streams in. Only for images a public tag points at; anything else is 404, exactly as an unknown image.";
const logsDescription =
  "The log lines after `cursor` (long-poll up to `waitSeconds` while the build runs), for the page's live script. Public images only.";

/** A public image: its workspace and a public tag pointing at it (null: a session's private page). */
type PublicImage = { imageId: string; workspaceId: string; workspace: string; tag: string | null };

statusPageApp.openapi(
  createRoute({
    method: "get",
    path: "/images/{id}",
    operationId: "getImageStatusPage",
    tags: ["status-pages"],
    security: [],
    summary: "Status page of an image",
    description: pageDescription,
    request: { params: IdParams },
    responses: { 200: { description: "The page.", content: html }, ...errorResponses(400, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    if (isIndexId(id)) return indexResponse(c, await publicIndexById(c.env, id), false);
    const found = await publicImageById(c.env, id);
    const origin = new URL(c.req.url).origin;
    return page(c, found, { reachedByTag: false, pageUrl: `${origin}/images/${encodeURIComponent(id)}` });
  },
);

statusPageApp.openapi(
  createRoute({
    method: "get",
    path: "/images/by-tag/{workspace}/{tag}",
    operationId: "getTagStatusPage",
    tags: ["status-pages"],
    security: [],
    summary: "Status page of a public tag's image",
    description: pageDescription,
    request: { params: TagParams },
    responses: { 200: { description: "The page.", content: html }, ...errorResponses(400, 404) },
  }),
  async (c) => {
    const { workspace, tag } = c.req.valid("param");
    const found = await publicImageByTag(c.env, workspace, tag);
    if (!found) return indexResponse(c, await publicIndexByTag(c.env, workspace, tag), false);
    const origin = new URL(c.req.url).origin;
    return page(c, found, {
      reachedByTag: true,
      pageUrl: `${origin}/images/by-tag/${encodeURIComponent(workspace)}/${encodeURIComponent(tag)}`,
    });
  },
);

statusPageApp.openapi(
  createRoute({
    method: "get",
    path: "/images/{id}/logs",
    operationId: "getImageStatusLog",
    tags: ["status-pages"],
    security: [],
    summary: "Status page log (by image id)",
    description: logsDescription,
    request: { params: IdParams, query: PollQuery },
    responses: {
      200: { description: "Lines after the cursor.", content: { "application/json": { schema: LogLinesSchema } } },
      ...errorResponses(400, 404),
    },
  }),
  async (c) => c.json(await pollLines(c.env, await publicImageById(c.env, c.req.valid("param").id), c.req.valid("query")), 200),
);

statusPageApp.openapi(
  createRoute({
    method: "get",
    path: "/images/by-tag/{workspace}/{tag}/logs",
    operationId: "getTagStatusLog",
    tags: ["status-pages"],
    security: [],
    summary: "Status page log (by tag)",
    description: logsDescription,
    request: { params: TagParams, query: PollQuery },
    responses: {
      200: { description: "Lines after the cursor.", content: { "application/json": { schema: LogLinesSchema } } },
      ...errorResponses(400, 404),
    },
  }),
  async (c) => {
    const { workspace, tag } = c.req.valid("param");
    return c.json(await pollLines(c.env, await publicImageByTag(c.env, workspace, tag), c.req.valid("query")), 200);
  },
);

const SessionParams = IdParams.extend({ workspace: WorkspaceName.openapi({ param: { name: "workspace", in: "path" } }) });

statusPageApp.openapi(
  createRoute({
    method: "get",
    path: "/w/{workspace}/images/{id}",
    operationId: "getPrivateImageStatusPage",
    tags: ["status-pages"],
    security: [{ pageSession: [] }],
    summary: "Status page of any image of the session's workspace",
    description: "The status page of any image of the workspace, public or private, for its browser session (decision 0021). Never cached.",
    request: { params: SessionParams },
    responses: { 200: { description: "The page.", content: html }, ...errorResponses(400, 403, 404) },
  }),
  async (c) => {
    const { workspace, id } = c.req.valid("param");
    if (isIndexId(id)) {
      const session = await sessionImage(c, workspace, id);
      return indexResponse(c, { indexId: id, workspaceId: session.workspaceId, workspace, tag: null }, true);
    }
    const pageUrl = `${new URL(c.req.url).origin}${sessionPath(workspace)}/images/${encodeURIComponent(id)}`;
    return page(c, await sessionImage(c, workspace, id), { reachedByTag: false, pageUrl, private: true });
  },
);

statusPageApp.openapi(
  createRoute({
    method: "get",
    path: "/w/{workspace}/images/{id}/logs",
    operationId: "getPrivateImageStatusLog",
    tags: ["status-pages"],
    security: [{ pageSession: [] }],
    summary: "Status page log (session)",
    description: "As the public page's log poll, for the session's private image page.",
    request: { params: SessionParams, query: PollQuery },
    responses: {
      200: { description: "Lines after the cursor.", content: { "application/json": { schema: LogLinesSchema } } },
      ...errorResponses(400, 403, 404),
    },
  }),
  async (c) => {
    const { workspace, id } = c.req.valid("param");
    c.header("cache-control", "private, no-store");
    return c.json(await pollLines(c.env, await sessionImage(c, workspace, id), c.req.valid("query")), 200);
  },
);

// Any image of the session's workspace (existence is checked when its view loads).
async function sessionImage(c: Context<AppEnv>, workspace: string, imageId: string): Promise<PublicImage> {
  const session = await requirePageSession(c.env, workspace, sessionTokenFrom(c.req.header("cookie")), Date.now());
  return { imageId, workspaceId: session.workspaceId, workspace, tag: null };
}

/** The one 404 of every path: unknown, private and foreign look the same. */
const unknownImage = () => notFound("Image");

async function publicImageById(env: Env, imageId: string): Promise<PublicImage | null> {
  const row = await drizzle(env.DB)
    .select({ workspaceId: images.workspaceId, workspace: workspaces.name, tag: tags.name })
    .from(images)
    .innerJoin(tags, and(eq(tags.imageId, images.id), eq(tags.workspaceId, images.workspaceId), eq(tags.public, true)))
    .innerJoin(workspaces, eq(workspaces.id, images.workspaceId))
    .where(eq(images.id, imageId))
    .orderBy(asc(tags.name))
    .get();
  if (row) return { imageId, ...row };
  // A platform of a multi-platform image a public tag points at (linked from that index's page).
  const viaIndex = await publicIndexOfImage(env, imageId);
  return viaIndex ? { imageId, ...viaIndex, tag: null } : null;
}

/** The page of a multi-platform image (workers/status-page/index-page.ts), or the one 404. */
async function indexResponse(c: Context<AppEnv>, target: IndexPageTarget | null, isPrivate: boolean): Promise<Response> {
  const shown = target && (await indexPage(c.env, target, { origin: new URL(c.req.url).origin, private: isPrivate }));
  if (!shown) throw unknownImage();
  const headers = await htmlPageHeaders(shown.html);
  if (isPrivate) return c.body(shown.html, 200, { ...headers, "cache-control": "private, no-store" });
  const running = indexPageRunning(shown.index);
  return c.body(shown.html, 200, {
    ...headers,
    "cache-control": running ? "no-store" : "no-cache",
    [EDGE_TTL_HEADER]: String(edgeTtlFor(running ? "building" : shown.index.status)),
  });
}

async function publicImageByTag(env: Env, workspace: string, tag: string): Promise<PublicImage | null> {
  const row = await drizzle(env.DB)
    .select({ imageId: images.id, workspaceId: images.workspaceId })
    .from(tags)
    .innerJoin(workspaces, eq(workspaces.id, tags.workspaceId))
    .innerJoin(images, and(eq(images.id, tags.imageId), eq(images.workspaceId, tags.workspaceId)))
    .where(and(eq(workspaces.name, workspace), eq(tags.name, tag), eq(tags.public, true)))
    .get();
  return row ? { ...row, workspace, tag } : null;
}

async function page(
  c: Context<AppEnv>,
  found: PublicImage | null,
  where: { reachedByTag: boolean; pageUrl: string; private?: boolean },
): Promise<Response> {
  if (!found) throw unknownImage();
  const view = await loadImageView(c.env.DB, found.workspaceId, found.imageId);
  if (!view) throw unknownImage();
  const origin = new URL(c.req.url).origin;
  const logBuild = logBuildOf(view);
  const [builtAt, log, timeline, pushes, index] = await Promise.all([
    builtTimes(c.env, found.workspaceId, view),
    logBuild ? readLog(c.env, found.workspaceId, logBuild, 0, { maxChunks: PAGE_LOG_CHUNKS, waitMs: 0 }) : null,
    view.buildId ? loadBuildTimeline(c.env, found.workspaceId, view.buildId) : null,
    // Public with the page: the same targets and messages are already in its log (decision 0019).
    loadPushViews(c.env.DB, found.workspaceId, found.imageId),
    indexOfImage(c.env, found.workspaceId, found.imageId),
  ]);
  const text = renderStatusPage({
    image: view,
    tag: where.reachedByTag && found.tag ? { workspace: found.workspace, name: found.tag } : null,
    pullReference: found.tag ? ociReference(origin, found.workspace, found.tag) : null,
    badgeUrl: found.tag ? `${origin}/badges/${encodeURIComponent(found.workspace)}/${encodeURIComponent(found.tag)}.svg` : null,
    workspaceUrl: where.private ? `${origin}${sessionPath(found.workspace)}` : null,
    pageUrl: where.pageUrl,
    builtAt,
    log: log
      ? chunksToLines(
          log.chunks,
          view.layers.map((l) => l.key),
        )
      : [],
    logPollUrl: log && !log.done ? `${where.pageUrl}/logs` : null,
    logCursor: log?.cursor ?? 0,
    timeline: timeline?.ok ? timeline.timeline : null,
    pushes,
    index,
  });
  const final = view.status !== "queued" && view.status !== "building";
  if (where.private) return c.body(text, 200, { ...(await htmlPageHeaders(text)), "cache-control": "private, no-store" });
  return c.body(text, 200, {
    ...(await htmlPageHeaders(text)),
    "cache-control": final ? "no-cache" : "no-store",
    [EDGE_TTL_HEADER]: String(edgeTtlFor(view.status)),
  });
}

async function pollLines(env: Env, found: PublicImage | null, query: z.infer<typeof PollQuery>): Promise<z.infer<typeof LogLinesSchema>> {
  if (!found) throw unknownImage();
  const view = await loadImageView(env.DB, found.workspaceId, found.imageId);
  if (!view) throw unknownImage();
  const buildId = logBuildOf(view);
  if (!buildId) return { lines: [], cursor: query.cursor, done: true };
  const log = await readLog(env, found.workspaceId, buildId, query.cursor, {
    maxChunks: POLL_LOG_CHUNKS,
    waitMs: query.waitSeconds * 1000,
  });
  return {
    lines: chunksToLines(
      log.chunks,
      view.layers.map((l) => l.key),
    ),
    cursor: log.cursor,
    done: log.done,
  };
}

// The image's own build; for a fully cached image, the build that produced its top layer.
function logBuildOf(view: ImageView): string | null {
  return view.buildId ?? view.layers.at(-1)?.buildId ?? null;
}

/**
 * Chunks after `cursor`: from the build's object while it runs, from the R2 archive once it
 * ended (the same sources as `GET /v1/builds/:id/logs`). A build that is gone reads as empty.
 */
async function readLog(
  env: Env,
  workspaceId: string,
  buildId: string,
  cursor: number,
  options: { maxChunks: number; waitMs: number },
): Promise<{ chunks: ChunkLike[]; cursor: number; done: boolean }> {
  const row = await drizzle(env.DB)
    .select({ logArchive: builds.logArchive })
    .from(builds)
    .where(and(eq(builds.id, buildId), eq(builds.workspaceId, workspaceId)))
    .get();
  if (!row) return { chunks: [], cursor, done: true };
  let archive = row.logArchive;
  if (archive === null) {
    const live = await env.BUILD.getByName(buildId).readLogs(cursor, {
      maxChunks: options.maxChunks,
      maxBytes: LOG_BYTES,
      waitMs: options.waitMs,
    });
    if (!live.ok) return { chunks: [], cursor, done: true };
    if (live.archived === null) return { chunks: live.chunks, cursor: live.chunks.at(-1)?.pos ?? cursor, done: live.done };
    archive = live.archived;
  }
  const stored = await readArchive(env.LOGS, archive, cursor, options.maxChunks);
  if (!stored) return { chunks: [], cursor, done: true };
  const next = stored.chunks.at(-1)?.pos ?? cursor;
  return { chunks: stored.chunks, cursor: next, done: next >= stored.lastPos };
}

// When each layer's result was written: the image's own build first, else the cache row.
async function builtTimes(env: Env, workspaceId: string, view: ImageView): Promise<Map<string, number>> {
  const d = drizzle(env.DB);
  const keys = JSON.stringify(view.layers.map((l) => l.key));
  const [own, cached] = await d.batch([
    d
      .select({ key: buildLayers.key, builtAt: buildLayers.builtAt })
      .from(buildLayers)
      .where(eq(buildLayers.buildId, view.buildId ?? "")),
    d
      .select({ key: layers.key, builtAt: layers.builtAt })
      .from(layers)
      .where(and(eq(layers.workspaceId, workspaceId), sql`${layers.key} IN (SELECT value FROM json_each(${keys}))`)),
  ]);
  const times = new Map(cached.map((r) => [r.key, r.builtAt.getTime()]));
  for (const r of own) times.set(r.key, r.builtAt.getTime());
  return times;
}
