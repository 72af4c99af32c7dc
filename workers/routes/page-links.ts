/**
 * `POST /v1/workspaces/current/page-links`: a short-lived, one-time, signed link that opens the
 * calling token's workspace pages in a browser (what `kiln open` prints). The API token stays
 * in the CLI; the link carries only the workspace, the token's id and where to land (decision
 * 0021). Needs `images:read`, the most the pages show.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { mintPageLink } from "../auth/page-access.ts";
import { PAGE_LINK_MAX_TTL_SECONDS, PAGE_LINK_TTL_SECONDS, sessionPath } from "../auth/page-session.ts";
import { images } from "../db/schema/images.ts";
import { workspaces } from "../db/schema/workspaces.ts";
import { notFound } from "../errors.ts";
import { bearerSecurity, errorResponses, iso, jsonBodyLimit, registerBearerScheme } from "./common.ts";

/** The page-links sub-app, mounted at the root. */
export const pageLinksApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(pageLinksApp);

const PageLinkRequest = z
  .object({
    imageId: z
      .string()
      .regex(/^im-[A-Za-z0-9_-]{1,60}$/)
      .optional()
      .openapi({ description: "Land on this image's page instead of the workspace view." }),
    expiresInSeconds: z
      .number()
      .int()
      .min(1)
      .max(PAGE_LINK_MAX_TTL_SECONDS)
      .optional()
      .openapi({ description: `How long the link can be opened (default ${PAGE_LINK_TTL_SECONDS}).` }),
  })
  .strict()
  .openapi("PageLinkRequest");
const PageLink = z
  .object({
    url: z.string().openapi({ description: "Open once, in a browser, before `expiresAt`. Treat it like a password until then." }),
    expiresAt: z.string(),
    workspace: z.string(),
  })
  .openapi("PageLink");

pageLinksApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/workspaces/current/page-links",
    operationId: "createPageLink",
    tags: ["status-pages"],
    summary: "Mint a one-time link that opens the workspace's pages in a browser",
    description:
      "The link exchanges itself, once, for an HttpOnly, SameSite=Strict session cookie scoped to `/w/<workspace>`: read-only pages of this workspace (the workspace view, private image pages), never the API. Revoking the token ends the sessions it opened.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:read"), jsonBodyLimit(1024)] as const,
    request: { body: { required: true, content: { "application/json": { schema: PageLinkRequest } } } },
    responses: {
      201: { description: "The link.", content: { "application/json": { schema: PageLink } } },
      ...errorResponses(400, 401, 403, 404, 413, 503),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const workspaceId = await workspaceOf(c);
    const d = drizzle(c.env.DB);
    const [wsRows, imageRows] = await d.batch([
      d.select({ name: workspaces.name }).from(workspaces).where(eq(workspaces.id, workspaceId)),
      d
        .select({ id: images.id })
        .from(images)
        .where(and(eq(images.id, body.imageId ?? ""), eq(images.workspaceId, workspaceId))),
    ]);
    const name = wsRows[0]?.name;
    if (name === undefined) throw notFound("Workspace");
    if (body.imageId && imageRows.length === 0) throw notFound("Image");
    const next = body.imageId ? `${sessionPath(name)}/images/${encodeURIComponent(body.imageId)}` : sessionPath(name);
    const link = await mintPageLink(
      c.env,
      {
        workspaceId,
        workspaceName: name,
        tokenId: c.get("auth").tokenId,
        next,
        ttlSeconds: body.expiresInSeconds ?? PAGE_LINK_TTL_SECONDS,
        origin: new URL(c.req.url).origin,
      },
      Date.now(),
    );
    c.header("cache-control", "no-store");
    return c.json({ url: link.url, expiresAt: iso(link.expiresAt), workspace: name }, 201);
  },
);
