/**
 * Multi-platform images (decision 0023): `GET /v1/platforms` (what the workspace's fleets build;
 * the SDK asks before uploading anything), `POST /v1/image-indexes` (group one submitted image
 * per platform) and `GET /v1/image-indexes/{id}` (one status, the OCI index digest once every
 * platform succeeded, and each platform's digest). Another workspace's index answers 404.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  DEFAULT_PLATFORM,
  ImageIndexRequestSchema,
  type ImageIndexView,
  ImageIndexViewSchema,
  PlatformsViewSchema,
} from "@kiln-build/protocol";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Context } from "hono";
import { startIndexPushIfDue } from "../../durable-objects/index-push.ts";
import { newId } from "../../durable-objects/storage.ts";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { tags } from "../db/schema/tags.ts";
import { executionContextOf, invalidateTagCaches } from "../edge-cache.ts";
import { forbidden, notFound } from "../errors.ts";
import { createImageIndex, loadImageIndex } from "../images/image-index.ts";
import { ociRepositoryPublic, publishTag, workspaceNameById } from "../images/oci-tags.ts";
import { workspacePlatforms } from "../images/platforms.ts";
import { currentRequestId } from "../log.ts";
import { bearerSecurity, errorResponses, jsonBodyLimit, registerBearerScheme } from "./common.ts";

/** The multi-platform sub-app, mounted at the root. */
export const imageIndexesApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(imageIndexesApp);

const IndexSchema = ImageIndexViewSchema.openapi("ImageIndex");
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

imageIndexesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/platforms",
    operationId: "listPlatforms",
    tags: ["images"],
    summary: "The platforms the workspace's enabled fleets build, natively or by emulation",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:write")] as const,
    responses: { 200: json(PlatformsViewSchema.openapi("Platforms"), "The platforms."), ...errorResponses(401, 403) },
  }),
  async (c) => {
    const platforms = await workspacePlatforms(c.env, await workspaceOf(c));
    return c.json({ default: DEFAULT_PLATFORM, platforms }, 200);
  },
);

imageIndexesApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/image-indexes",
    operationId: "createImageIndex",
    tags: ["images"],
    summary: "Group one submitted image per platform into a multi-platform image",
    description:
      "Each image is a `POST /v1/images` submission whose layers carry the platform. Answers the index's view; once every platform's image succeeded, the OCI image index is written to the built-in registry (when the last platform's build ends, or at the next read). `tag` (needs `tags:write`) points a Kiln tag at the index: its OCI tag resolves to the OCI image index once assembled. `push` (with `labels`, `annotations`, `source`, `revision`, as for `POST /v1/images`) copies the whole index to external registries once it is assembled, in one push build; `pushes` shows each target.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:write"), jsonBodyLimit(16 * 1024)] as const,
    request: { body: { required: true, content: { "application/json": { schema: ImageIndexRequestSchema.openapi("ImageIndexCreate") } } } },
    responses: { 201: json(IndexSchema, "Recorded."), ...errorResponses(400, 401, 403, 404, 413, 422) },
  }),
  async (c) => {
    const body = c.req.valid("json");
    if (body.tag && !c.get("auth").scopes.includes("tags:write")) throw forbidden("Setting `tag` needs the `tags:write` scope.");
    const workspaceId = await workspaceOf(c);
    const id = await createImageIndex(c.env, workspaceId, body, newId("bd"));
    const origin = new URL(c.req.url).origin;
    if (body.tag) await writeIndexTag(c, { workspaceId, origin }, id, body.tag);
    return c.json(await readIndex(c, workspaceId, id), 201);
  },
);

/** Points Kiln tag `tag` at index `id` (its OCI tag follows once the index is assembled), as a submission's `tag` does. */
async function writeIndexTag(c: Context<AppEnv>, where: { workspaceId: string; origin: string }, id: string, tag: string) {
  const { workspaceId, origin } = where;
  const workspaceName = await workspaceNameById(c.env, workspaceId);
  // A new tag takes its registry repository's visibility, as with `PUT /v1/tags/{name}`.
  const isPublic = await ociRepositoryPublic(c.env, workspaceName, tag);
  await drizzle(c.env.DB)
    .insert(tags)
    .values({ workspaceId, name: tag, imageId: id, public: isPublic })
    .onConflictDoUpdate({ target: [tags.workspaceId, tags.name], set: { imageId: id, updatedAt: sql`(unixepoch('subsec') * 1000)` } });
  await publishTag(c.env, workspaceId, workspaceName, tag, id);
  await invalidateTagCaches(c.env, executionContextOf(c), { origin, workspaceName, workspaceId, tags: [tag] });
}

/** The index's view; starts its external push when it has just become due (durable-objects/index-push.ts). */
async function readIndex(c: Context<AppEnv>, workspaceId: string, id: string): Promise<ImageIndexView> {
  const origin = new URL(c.req.url).origin;
  const found = await loadImageIndex(c.env, workspaceId, id, origin);
  if (!found) throw notFound(`Image index '${id}'`);
  if (found.push && found.view.pushes?.some((p) => p.status === "pending")) {
    const workspaceName = await workspaceNameById(c.env, workspaceId);
    await startIndexPushIfDue(c.env, { workspaceId, workspaceName, origin, requestId: currentRequestId() }, found.view, found.push);
  }
  return found.view;
}

imageIndexesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/image-indexes/{id}",
    operationId: "getImageIndex",
    tags: ["images"],
    summary: "Read a multi-platform image: one status, the index digest and each platform's digest",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:read")] as const,
    request: {
      params: z.object({
        id: z
          .string()
          .max(64)
          .openapi({ param: { name: "id", in: "path" }, example: "ix-abc" }),
      }),
    },
    responses: { 200: json(IndexSchema, "The index."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await readIndex(c, await workspaceOf(c), id), 200);
  },
);
