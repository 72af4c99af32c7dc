/**
 * Public build-status badges: `GET /badges/:workspace/:tag.svg` (an SVG for READMEs) and
 * `.json` (the shields.io endpoint schema v1). Served from one D1 query (tag, workspace,
 * image, build projection), never from a build's Durable Object; `ETag` + `If-None-Match`
 * answer 304 without rendering. A tag that is not public answers exactly like one that does
 * not exist, so badges never reveal which private tags or workspaces exist.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { TagName, WorkspaceName } from "@kiln-build/protocol";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { badgeEtag, badgeStatus, endpointJson, ifNoneMatchHits, parseBadgeFile } from "../badges/badge.ts";
import { renderBadgeSvg } from "../badges/render.ts";
import { builds } from "../db/schema/builds.ts";
import { images } from "../db/schema/images.ts";
import { tags } from "../db/schema/tags.ts";
import { workspaces } from "../db/schema/workspaces.ts";
import { EDGE_TTL_HEADER, edgeCache, edgeTtlFor } from "../edge-cache.ts";
import { notFound } from "../errors.ts";
import { loadImageIndexView } from "../images/image-index.ts";
import { publicIndexByTag } from "../status-page/index-page-data.ts";
import { errorResponses } from "./common.ts";

// The view of the multi-platform image public tag `tag` names, or null.
async function publicIndexStatus(env: Env, workspace: string, tag: string) {
  const target = await publicIndexByTag(env, workspace, tag);
  return target && (await loadImageIndexView(env, target.workspaceId, target.indexId));
}

/** The badge sub-app, mounted at the root. */
export const badgesApp = new OpenAPIHono<AppEnv>();
// Served from the edge cache when it holds the badge (workers/edge-cache.ts).
badgesApp.use("/badges/*", edgeCache);

// Revalidate on every view (GitHub's image proxy honours this); the 304 path is one D1 read.
const CACHE_CONTROL = "no-cache";

const EndpointSchema = z
  .object({
    schemaVersion: z.literal(1),
    label: z.string(),
    message: z.enum(["queued", "building", "passing", "failed", "timeout", "cancelled"]),
    color: z.string(),
  })
  .openapi("BadgeEndpoint");
const headers = z.object({ "if-none-match": z.string().max(1024).optional() });
const docParams = (ext: string) =>
  z.object({
    workspace: WorkspaceName.openapi({ param: { name: "workspace", in: "path" } }),
    tag: TagName.openapi({ param: { name: "tag", in: "path" }, description: `The tag name; the path segment is \`<tag>.${ext}\`.` }),
  });
const common = { 304: { description: "Not modified (the `If-None-Match` ETag still matches)." }, ...errorResponses(400, 404) };

// Documented with the real path shapes; served by the one handler below (Hono cannot put a
// parameter and a literal suffix in one path segment).
badgesApp.openAPIRegistry.registerPath({
  method: "get",
  path: "/badges/{workspace}/{tag}.svg",
  operationId: "getBadgeSvg",
  tags: ["badges"],
  security: [],
  summary: "Build-status badge (SVG)",
  description:
    "Statuses: queued, building, passing, failed, timeout, cancelled. Public tags only; any other tag answers 404 exactly like an unknown one.",
  request: { params: docParams("svg"), headers },
  responses: { 200: { description: "The badge.", content: { "image/svg+xml": { schema: z.string() } } }, ...common },
});
badgesApp.openAPIRegistry.registerPath({
  method: "get",
  path: "/badges/{workspace}/{tag}.json",
  operationId: "getBadgeJson",
  tags: ["badges"],
  security: [],
  summary: "Build-status badge (shields.io endpoint JSON)",
  description: "For `https://img.shields.io/endpoint?url=...`. Public tags only; any other tag answers 404 exactly like an unknown one.",
  request: { params: docParams("json"), headers },
  responses: {
    200: { description: "Shields.io endpoint schema v1.", content: { "application/json": { schema: EndpointSchema } } },
    ...common,
  },
});

badgesApp.openapi(
  createRoute({
    method: "get",
    path: "/badges/{workspace}/{file}",
    hide: true,
    request: {
      params: z.object({
        workspace: WorkspaceName,
        file: z
          .string()
          .max(200)
          .refine((file) => {
            const parsed = parseBadgeFile(file);
            return parsed !== null && TagName.safeParse(parsed.tag).success;
          }, "`<tag>.svg` or `<tag>.json`"),
      }),
      headers,
    },
    responses: { 200: { description: "The badge." }, 304: { description: "Not modified." } },
  }),
  async (c) => {
    const { workspace, file } = c.req.valid("param");
    const parsed = parseBadgeFile(file);
    if (!parsed) throw notFound("Badge");
    const row = await drizzle(c.env.DB)
      .select({ buildId: images.buildId, buildStatus: builds.status })
      .from(tags)
      .innerJoin(workspaces, eq(workspaces.id, tags.workspaceId))
      .innerJoin(images, and(eq(images.id, tags.imageId), eq(images.workspaceId, tags.workspaceId)))
      .leftJoin(builds, eq(builds.id, images.buildId))
      .where(and(eq(workspaces.name, workspace), eq(tags.name, parsed.tag), eq(tags.public, true)))
      .get();
    // A public tag of a multi-platform image: the index's one status (queued, building, then its outcome).
    const index = row ? null : await publicIndexStatus(c.env, workspace, parsed.tag);
    // Unknown workspace, unknown tag, private tag, dangling image: one answer for all.
    if (!row && !index) throw notFound("Badge");
    const status = row
      ? badgeStatus(row.buildId, row.buildStatus)
      : badgeStatus(index!.id, index!.status === "building" ? "running" : index!.status);
    const etag = badgeEtag(parsed.format, status);
    const cacheHeaders = { etag, "cache-control": CACHE_CONTROL, [EDGE_TTL_HEADER]: String(edgeTtlFor(status)) };
    if (ifNoneMatchHits(c.req.header("if-none-match"), etag)) return c.body(null, 304, cacheHeaders);
    if (parsed.format === "json") return c.json(endpointJson(status), 200, cacheHeaders);
    return c.body(await renderBadgeSvg(status), 200, { ...cacheHeaders, "content-type": "image/svg+xml; charset=utf-8" });
  },
);
