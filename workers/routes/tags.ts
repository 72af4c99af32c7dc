/**
 * Tags: a name pointing at one of the workspace's images, optionally public (its badge is then
 * served at `/badges/<workspace>/<tag>.svg`). `PUT` moves the tag, `GET` reads one or lists
 * them by name, `DELETE` removes one. Another workspace's tag answers 404 like a missing one.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { TagListSchema, TagName, TagViewSchema } from "@kiln-build/protocol";
import { and, asc, eq, gt, sql } from "drizzle-orm";
import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { tags } from "../db/schema/tags.ts";
import { executionContextOf, invalidateTagCaches } from "../edge-cache.ts";
import { conflict, forbidden, notFound } from "../errors.ts";
import {
  ociReference,
  ociRepositoryPublic,
  publishTag,
  syncRepositoryVisibility,
  tagTargetExists,
  unpublishTag,
  workspaceNameById,
} from "../images/oci-tags.ts";
import { bearerSecurity, errorResponses, iso, jsonBodyLimit, OkSchema, registerBearerScheme } from "./common.ts";

/** The tags sub-app, mounted at the root. */
export const tagsApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(tagsApp);

const TagSchema = TagViewSchema.openapi("Tag");
const NameParam = z.object({ name: TagName.openapi({ param: { name: "name", in: "path" }, example: "app:v1" }) });
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

tagsApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/tags/{name}",
    operationId: "putTag",
    tags: ["tags"],
    summary: "Point a tag at an image",
    description:
      "Creates or moves the tag. `imageId` names an image (`im-...`) or a multi-platform image (an image index, `ix-...`), whose OCI tag then resolves to the OCI image index. A `NAME:TAG` tag is also the OCI tag `<registry>/<workspace>/NAME:TAG` of the built-in registry once the image has succeeded (docs/registry.md). `public` makes its badge visible without a token, and its registry repository pullable without one; omitted, a new tag takes its repository's visibility (private for a new one) and an existing one keeps its setting. Changing what is public (the flag, the image a public tag points at, or a tag of a public repository) needs `images:write` as well.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("tags:write"), jsonBodyLimit(4 * 1024)],
    request: {
      params: NameParam,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .object({ imageId: z.string().min(1).max(64), public: z.boolean().optional() })
              .strict()
              .openapi("TagPut"),
          },
        },
      },
    },
    responses: { 200: json(TagSchema, "The tag as stored."), ...errorResponses(400, 401, 403, 404, 409, 413) },
  }),
  async (c) => {
    const { name } = c.req.valid("param");
    const body = c.req.valid("json");
    const workspaceId = await workspaceOf(c);
    const db = drizzle(c.env.DB);
    // The image (or index) must be this workspace's: a tag must never expose another workspace's status.
    if (!(await tagTargetExists(c.env, workspaceId, body.imageId))) throw notFound(`Image '${body.imageId}'`);
    const workspaceName = await workspaceNameById(c.env, workspaceId);
    const repositoryPublic = await ociRepositoryPublic(c.env, workspaceName, name);
    // What is public is `images:write`'s to decide; `tags:write` alone only moves private tags.
    const guard = c.get("auth").scopes.includes("images:write")
      ? undefined
      : await visibilityGuard(db, workspaceId, name, body, repositoryPublic);
    const row = await db
      .insert(tags)
      .values({ workspaceId, name, imageId: body.imageId, public: body.public ?? repositoryPublic })
      .onConflictDoUpdate({
        target: [tags.workspaceId, tags.name],
        set: {
          imageId: body.imageId,
          ...(body.public === undefined ? {} : { public: body.public }),
          updatedAt: sql`(unixepoch('subsec') * 1000)`,
        },
        ...(guard ? { setWhere: guard } : {}),
      })
      .returning()
      .get();
    if (!row) throw conflict("tag_changed", "The tag's visibility changed while this request ran; read it and retry.");
    // A repository made private goes private before the tag moves; one made public, after.
    if (body.public === false) await syncRepositoryVisibility(c.env, workspaceId, workspaceName, name, false);
    await publishTag(c.env, workspaceId, workspaceName, name, body.imageId);
    if (body.public === true) await syncRepositoryVisibility(c.env, workspaceId, workspaceName, name, true);
    // The tag's badges and page may be cached at the edge with the previous image or visibility.
    await invalidateTagCaches(c.env, executionContextOf(c), {
      origin: new URL(c.req.url).origin,
      workspaceId,
      workspaceName,
      tags: [name],
    });
    return c.json(present(row, new URL(c.req.url).origin, workspaceName), 200);
  },
);

tagsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/tags/{name}",
    operationId: "getTag",
    tags: ["tags"],
    summary: "Read a tag",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:read")],
    request: { params: NameParam },
    responses: { 200: json(TagSchema, "The tag."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { name } = c.req.valid("param");
    const workspaceId = await workspaceOf(c);
    const row = await drizzle(c.env.DB)
      .select()
      .from(tags)
      .where(and(eq(tags.workspaceId, workspaceId), eq(tags.name, name)))
      .get();
    if (!row) throw notFound(`Tag '${name}'`);
    return c.json(present(row, new URL(c.req.url).origin, await workspaceNameById(c.env, workspaceId)), 200);
  },
);

tagsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/tags",
    operationId: "listTags",
    tags: ["tags"],
    summary: "List tags, by name",
    description: "The workspace's tags in name order, up to `limit` (default and most 1000) per page; follow `nextCursor` for more.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:read")],
    request: {
      query: z.object({
        limit: z.coerce.number().int().min(1).max(1000).default(1000).openapi({ type: "integer" }),
        cursor: TagName.optional().openapi({ description: "The `nextCursor` of the previous page." }),
      }),
    },
    responses: { 200: json(TagListSchema.openapi("TagList"), "A page of tags."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const workspaceId = await workspaceOf(c);
    const rows = await drizzle(c.env.DB)
      .select()
      .from(tags)
      .where(and(eq(tags.workspaceId, workspaceId), cursor === undefined ? undefined : gt(tags.name, cursor)))
      .orderBy(asc(tags.name))
      .limit(limit + 1)
      .all();
    const page = rows.slice(0, limit);
    const origin = new URL(c.req.url).origin;
    const workspaceName = await workspaceNameById(c.env, workspaceId);
    return c.json(
      { tags: page.map((row) => present(row, origin, workspaceName)), nextCursor: rows.length > limit ? page.at(-1)!.name : null },
      200,
    );
  },
);

tagsApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/tags/{name}",
    operationId: "deleteTag",
    tags: ["tags"],
    summary: "Delete a tag",
    description:
      "The image stays; the tag's badge and status page answer 404 from now on, and its OCI tag is removed (the manifest stays pullable by digest).",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("tags:write")],
    request: { params: NameParam },
    responses: { 200: json(OkSchema, "Deleted."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { name } = c.req.valid("param");
    const workspaceId = await workspaceOf(c);
    const row = await drizzle(c.env.DB)
      .delete(tags)
      .where(and(eq(tags.workspaceId, workspaceId), eq(tags.name, name)))
      .returning({ name: tags.name })
      .get();
    if (!row) throw notFound(`Tag '${name}'`);
    await unpublishTag(c.env, await workspaceNameById(c.env, workspaceId), name);
    // Its badges and page may be cached at the edge; they must not outlive the tag.
    await invalidateTagCaches(c.env, executionContextOf(c), { origin: new URL(c.req.url).origin, workspaceId, tags: [name] });
    return c.json({ ok: true as const }, 200);
  },
);

/**
 * For a caller without `images:write`: refuses (403) a write that would change what is public
 * (make the tag public or private, or point a public tag at another image), and returns the
 * condition the upsert must still find true, so a concurrent change cannot slip in between.
 */
async function visibilityGuard(
  db: DrizzleD1Database,
  workspaceId: string,
  name: string,
  body: { imageId: string; public?: boolean },
  repositoryPublic: boolean,
) {
  if (repositoryPublic) {
    throw forbidden(
      "This tag's registry repository is public: setting or moving one of its tags publishes an image, which needs the `images:write` scope, not `tags:write` alone.",
    );
  }
  const existing = await db
    .select({ imageId: tags.imageId, public: tags.public })
    .from(tags)
    .where(and(eq(tags.workspaceId, workspaceId), eq(tags.name, name)))
    .get();
  const wasPublic = existing?.public ?? false;
  const republishes = wasPublic && body.imageId !== existing?.imageId;
  if ((body.public ?? wasPublic) !== wasPublic || republishes) {
    throw forbidden(
      "Changing what is public (a tag's `public` flag, or the image a public tag points at) needs the `images:write` scope, not `tags:write` alone. Use a token with images:write, or omit `public` to move a private tag.",
    );
  }
  return wasPublic ? and(eq(tags.public, true), eq(tags.imageId, body.imageId)) : eq(tags.public, false);
}

function present(row: typeof tags.$inferSelect, origin: string, workspaceName: string) {
  return {
    name: row.name,
    imageId: row.imageId,
    public: row.public,
    reference: ociReference(origin, workspaceName, row.name),
    updatedAt: iso(row.updatedAt),
  };
}
