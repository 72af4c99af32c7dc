/**
 * Multi-platform images (decision 0023): `GET /v1/platforms` (what the workspace's fleets build;
 * the SDK asks before uploading anything), `POST /v1/image-indexes` (group one submitted image
 * per platform) and `GET /v1/image-indexes/{id}` (one status, the OCI index digest once every
 * platform succeeded, and each platform's digest). Another workspace's index answers 404.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { DEFAULT_PLATFORM, ImageIndexRequestSchema, ImageIndexViewSchema, PlatformsViewSchema } from "@kiln-build/protocol";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { notFound } from "../errors.ts";
import { createImageIndex, loadImageIndexView } from "../images/image-index.ts";
import { workspacePlatforms } from "../images/platforms.ts";
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
      "Each image is a `POST /v1/images` submission whose layers carry the platform. Answers the index's view; once every platform's image succeeded, reading it writes the OCI image index to the built-in registry.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:write"), jsonBodyLimit(16 * 1024)] as const,
    request: { body: { required: true, content: { "application/json": { schema: ImageIndexRequestSchema.openapi("ImageIndexCreate") } } } },
    responses: { 201: json(IndexSchema, "Recorded."), ...errorResponses(400, 401, 403, 404, 413) },
  }),
  async (c) => {
    const workspaceId = await workspaceOf(c);
    const id = await createImageIndex(c.env, workspaceId, c.req.valid("json"));
    return c.json((await loadImageIndexView(c.env, workspaceId, id))!, 201);
  },
);

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
    const view = await loadImageIndexView(c.env, await workspaceOf(c), id);
    if (!view) throw notFound(`Image index '${id}'`);
    return c.json(view, 200);
  },
);
