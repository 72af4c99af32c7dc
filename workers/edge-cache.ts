/**
 * Edge caching of the public, unauthenticated pages (badges; the status page when it lands)
 * with the Workers Cache API, so a README viewed a million times costs D1 almost nothing.
 *
 * A route opts in per response: it sets `x-kiln-edge-ttl: <seconds>` on a 200 and the
 * middleware stores that response for that long (the header never reaches the client).
 *
 * Invalidation is correct by construction rather than by purging, because the Cache API lives
 * in one Cloudflare location and `cache.delete` reaches only that location:
 * - a page showing a build that can still change (queued, building) is never cached, so the
 *   moment a build finishes every location serves its final status;
 * - a final status never changes by itself: only a tag write (moved, made public or private)
 *   changes what a tag's pages show. Those writes purge the tag's pages in the location that
 *   served them (`invalidateImageCaches`, `invalidateTagCaches`), and every other location
 *   follows within `FINAL_TTL_SECONDS`.
 * On a `*.workers.dev` hostname the Cache API may do nothing; production deployments use a
 * custom domain (docs/deploy.md). Numbers: docs/scale.md#edge-cache.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app-env.ts";
import { ifNoneMatchHits } from "./badges/badge.ts";
import { tags } from "./db/schema/tags.ts";
import { workspaces } from "./db/schema/workspaces.ts";
import { log } from "./log.ts";

/** The response header by which a route asks for edge caching (seconds). Stripped before sending. */
export const EDGE_TTL_HEADER = "x-kiln-edge-ttl";
/** Tells clients (and the load test) whether the edge cache answered: `hit` or `miss`. */
export const EDGE_CACHE_STATUS_HEADER = "x-kiln-cache";
/** How long a page of a finished build is served from the edge: a tag write shows everywhere within this. */
export const FINAL_TTL_SECONDS = 60;

// A named cache, apart from `caches.default` (which `fetch()` shares with the zone's CDN rules).
const CACHE_NAME = "kiln-edge-v1";
// The client-facing Cache-Control, kept beside the edge's own `public, max-age` in a stored copy.
const CLIENT_CACHE_CONTROL = "x-kiln-client-cache-control";

/** Something that keeps the Worker alive for background work (ExecutionContext, DurableObjectState). */
export type WaitUntil = { waitUntil(promise: Promise<unknown>): void };

/** Where the edge cache keeps `path` for a Worker reached at `origin` (pure). */
export function edgeCacheKey(origin: string, path: string): string {
  // The Worker's own hostname, as the Cache API docs ask; a prefix so no real URL collides.
  return `${origin}/__kiln-edge${canonicalPath(path)}`;
}

/** Every segment percent-encoded one way, so `app:v1` and `app%3Av1` (tag names, `tagPagePaths`) share one key. */
function canonicalPath(path: string): string {
  return path
    .split("/")
    .map((segment) => {
      try {
        return encodeURIComponent(decodeURIComponent(segment));
      } catch {
        return segment;
      }
    })
    .join("/");
}

/** Paths of the pages a tag shows: its badges and its status page (pure). */
export function tagPagePaths(workspace: string, tag: string): string[] {
  const ws = encodeURIComponent(workspace);
  const name = encodeURIComponent(tag);
  return [`/badges/${ws}/${name}.svg`, `/badges/${ws}/${name}.json`, `/images/by-tag/${ws}/${name}`];
}

/** The edge TTL for a page showing a build in `status` (pure): 0 (not cached) while it can still change. */
export function edgeTtlFor(status: string): number {
  return status === "queued" || status === "building" ? 0 : FINAL_TTL_SECONDS;
}

/**
 * Middleware for public GET routes: answers from the edge cache when it holds the page
 * (`If-None-Match` -> 304 without touching D1), otherwise runs the route and stores its 200
 * for the TTL the route asked for.
 */
export const edgeCache = createMiddleware<AppEnv>(async (c, next) => {
  if (c.req.method !== "GET") return next();
  const key = new Request(edgeCacheKey(new URL(c.req.url).origin, c.req.path));
  const cache = await caches.open(CACHE_NAME);
  const hit = await cache.match(key).catch(() => undefined);
  if (hit) {
    const headers = new Headers(hit.headers);
    headers.set("cache-control", hit.headers.get(CLIENT_CACHE_CONTROL) ?? "no-cache");
    headers.delete(CLIENT_CACHE_CONTROL);
    headers.set(EDGE_CACHE_STATUS_HEADER, "hit");
    const etag = headers.get("etag");
    if (etag && ifNoneMatchHits(c.req.header("if-none-match"), etag)) {
      await hit.body?.cancel();
      c.res = new Response(null, {
        status: 304,
        headers: { etag, "cache-control": headers.get("cache-control")!, [EDGE_CACHE_STATUS_HEADER]: "hit" },
      });
      return;
    }
    c.res = new Response(hit.body, { status: hit.status, headers });
    return;
  }
  await next();
  if (!c.res.headers.has(EDGE_TTL_HEADER)) return;
  const ttl = Number(c.res.headers.get(EDGE_TTL_HEADER));
  const headers = new Headers(c.res.headers);
  headers.delete(EDGE_TTL_HEADER);
  headers.set(EDGE_CACHE_STATUS_HEADER, "miss");
  const response = new Response(c.res.body, { status: c.res.status, headers });
  // Reset first: assigning over a response makes Hono copy the old headers (the TTL) back in.
  c.res = undefined;
  c.res = response;
  if (response.status !== 200 || !Number.isInteger(ttl) || ttl <= 0) return;
  const stored = new Headers(headers);
  stored.set(CLIENT_CACHE_CONTROL, headers.get("cache-control") ?? "no-cache");
  // The Cache API keeps an entry as long as its Cache-Control allows (and may drop it sooner).
  stored.set("cache-control", `public, max-age=${ttl}`);
  stored.delete(EDGE_CACHE_STATUS_HEADER);
  const put = cache.put(key, new Response(response.clone().body, { status: 200, headers: stored })).catch((error: unknown) => {
    log("warn", "edge cache put failed", { path: c.req.path, error: String(error) });
  });
  background(executionContextOf(c), put);
});

/** The request's ExecutionContext, or undefined when the app runs without one (tests calling `app.fetch`). */
export function executionContextOf(c: { executionCtx: WaitUntil }): WaitUntil | undefined {
  try {
    return c.executionCtx;
  } catch {
    // Hono's getter throws when no context was passed.
    return undefined;
  }
}

/** Deletes the edge copies of `paths` in this location (in the background). */
export function purgeEdgePaths(ctx: WaitUntil | undefined, origin: string, paths: readonly string[]): Promise<void> {
  const purge = caches
    .open(CACHE_NAME)
    .then((cache) => Promise.all(paths.map((path) => cache.delete(new Request(edgeCacheKey(origin, path))))))
    .then(() => undefined)
    .catch((error: unknown) => log("warn", "edge cache purge failed", { error: String(error) }));
  return background(ctx, purge);
}

/**
 * Purges the pages of an image reached by `tags` in `workspace` (names), and its status page.
 * Without `tags`, the image's tags are read from D1.
 */
export async function invalidateImageCaches(
  env: Env,
  ctx: WaitUntil | undefined,
  params: { origin: string; workspace: string; imageId: string; tags?: readonly string[] },
): Promise<void> {
  const names =
    params.tags ??
    (
      await drizzle(env.DB)
        .select({ name: tags.name })
        .from(tags)
        .innerJoin(workspaces, eq(workspaces.id, tags.workspaceId))
        .where(and(eq(workspaces.name, params.workspace), eq(tags.imageId, params.imageId)))
        .all()
    ).map((row) => row.name);
  const paths = [`/images/${encodeURIComponent(params.imageId)}`, ...names.flatMap((tag) => tagPagePaths(params.workspace, tag))];
  await purgeEdgePaths(ctx, params.origin, paths);
}

/**
 * Purges the pages of tags after they were written (moved, created, made public or private).
 * The workspace's name is read from D1 unless the caller knows it.
 */
export async function invalidateTagCaches(
  env: Env,
  ctx: WaitUntil | undefined,
  params: { origin: string; workspaceId: string; workspaceName?: string; tags: readonly string[] },
): Promise<void> {
  if (params.tags.length === 0) return;
  const name =
    params.workspaceName ??
    (await drizzle(env.DB).select({ name: workspaces.name }).from(workspaces).where(eq(workspaces.id, params.workspaceId)).get())?.name;
  if (name === undefined) return;
  await purgeEdgePaths(
    ctx,
    params.origin,
    params.tags.flatMap((tag) => tagPagePaths(name, tag)),
  );
}

// Hands `work` to waitUntil when there is a context (the response need not wait), else returns it.
function background(ctx: WaitUntil | undefined, work: Promise<unknown>): Promise<void> {
  const done = work.then(() => undefined);
  if (!ctx) return done;
  ctx.waitUntil(done);
  return Promise.resolve();
}
