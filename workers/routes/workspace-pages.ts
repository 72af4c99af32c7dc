/**
 * The workspace's private pages (decision 0021): `GET /w/:workspace/open?t=` exchanges a page
 * link for a session cookie, `GET /w/:workspace` is the workspace view (recent images with
 * filters). Both are read-only GETs that change nothing but the session, so there is nothing
 * for a cross-site request to forge; every refusal is the one 403 `session_required`.
 * (The private image pages under `/w/:workspace/images/:id` live with the status page.)
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { WorkspaceName } from "@kiln-build/protocol";
import type { AppEnv } from "../app-env.ts";
import { exchangePageLink, requirePageSession } from "../auth/page-access.ts";
import { PAGE_SESSION_COOKIE, sessionCookie, sessionTokenFrom } from "../auth/page-session.ts";
import { badRequest } from "../errors.ts";
import { recentImages } from "../images/recent.ts";
import { BASE_STYLE, htmlPageHeaders } from "../status-page/page-style.ts";
import { escapeHtml } from "../status-page/render.ts";
import { filterQuery, renderWorkspaceView, VIEW_STATUSES, VIEW_WINDOWS, type ViewWindow } from "../status-page/workspace-view.ts";
import { errorResponses } from "./common.ts";

/** The workspace pages sub-app, mounted at the root. */
export const workspacePagesApp = new OpenAPIHono<AppEnv>();
workspacePagesApp.openAPIRegistry.registerComponent("securitySchemes", "pageSession", {
  type: "apiKey",
  in: "cookie",
  name: PAGE_SESSION_COOKIE,
  description: "A browser session from a page link (`POST /v1/workspaces/current/page-links`); opens `/w/<workspace>` pages only.",
});

const html = { "text/html": { schema: z.string() } };
const WorkspaceParam = z.object({ workspace: WorkspaceName.openapi({ param: { name: "workspace", in: "path" } }) });
const [firstStatus, ...otherStatuses] = VIEW_STATUSES;
const ViewQuery = z.object({
  status: z.enum(["", firstStatus!, ...otherStatuses]).optional(),
  tag: z.string().max(128).optional(),
  since: z.enum(["all", "1h", "24h", "7d", "30d"]).optional(),
  before: z.string().max(128).optional().openapi({ description: "The `Older` link's cursor." }),
});

workspacePagesApp.openapi(
  createRoute({
    method: "get",
    path: "/w/{workspace}/open",
    operationId: "openPageLink",
    tags: ["status-pages"],
    security: [],
    summary: "Exchange a page link for a browser session",
    description:
      "Verifies the link (signature, expiry, workspace, not used before, minting token not revoked), sets the session cookie and sends the browser on to the link's page without the token in the address. A refused link is a 403 page.",
    request: { params: WorkspaceParam, query: z.object({ t: z.string().max(2048) }) },
    responses: { 200: { description: "Sets the cookie and moves on (meta refresh).", content: html }, ...errorResponses(400, 403) },
  }),
  async (c) => {
    const { workspace } = c.req.valid("param");
    const { session, next } = await exchangePageLink(c.env, workspace, c.req.valid("query").t, Date.now());
    const secure = new URL(c.req.url).protocol === "https:";
    // A page that moves on by itself rather than a 303: a navigation the page itself starts is
    // same-site, so the SameSite=Strict cookie is sent even when the link was opened from
    // another site (a redirect would keep that site as the initiator and withhold it).
    const page = continuePage(next);
    return c.body(page, 200, {
      ...(await htmlPageHeaders(page)),
      "set-cookie": sessionCookie(session, workspace, secure),
      "cache-control": "no-store",
    });
  },
);

workspacePagesApp.openapi(
  createRoute({
    method: "get",
    path: "/w/{workspace}",
    operationId: "getWorkspaceView",
    tags: ["status-pages"],
    security: [{ pageSession: [] }],
    summary: "The workspace view: recent images and builds",
    description:
      "HTML: the workspace's recent images, newest first, with status, build duration, tags and the submitting token, filtered by status, tag substring and time window; each links to its private image page. Needs the session cookie of this workspace.",
    request: { params: WorkspaceParam, query: ViewQuery },
    responses: { 200: { description: "The page.", content: html }, ...errorResponses(400, 403) },
  }),
  async (c) => {
    const { workspace } = c.req.valid("param");
    const now = Date.now();
    const session = await requirePageSession(c.env, workspace, sessionTokenFrom(c.req.header("cookie")), now);
    const query = c.req.valid("query");
    const since: ViewWindow = query.since ?? "all";
    const filters = { status: query.status || null, tag: (query.tag ?? "").trim(), since };
    const after = query.before === undefined ? undefined : decodeBefore(query.before);
    const page = await recentImages(
      c.env.DB,
      session.workspaceId,
      {
        ...(filters.status ? { status: filters.status } : {}),
        ...(filters.tag ? { tag: filters.tag } : {}),
        ...(since === "all" ? {} : { sinceMs: now - VIEW_WINDOWS[since] * 3600_000 }),
        ...(after ? { after } : {}),
      },
      now,
    );
    const text = renderWorkspaceView({
      workspace,
      filters,
      images: page.images,
      olderQuery: page.next ? filterQuery(filters, { before: encodeBefore(page.next) }) : null,
      paged: after !== undefined,
    });
    return c.body(text, 200, { ...(await htmlPageHeaders(text, { forms: true })), "cache-control": "private, no-store" });
  },
);

function encodeBefore(row: { createdAtMs: number; id: string }): string {
  return `${row.createdAtMs}.${row.id}`;
}

function decodeBefore(text: string): { createdAtMs: number; id: string } {
  const match = /^(\d{1,16})\.(im-[A-Za-z0-9_-]{1,60})$/.exec(text);
  if (!match) throw badRequest("Invalid `before`; follow the page's Older link.");
  return { createdAtMs: Number(match[1]), id: match[2]! };
}

// The page between the link and the view: it moves on at once, and says where in case it does not.
function continuePage(next: string): string {
  const href = escapeHtml(next);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="0; url=${href}">
<title>Signed in · Kiln</title>
<style>${BASE_STYLE}</style>
</head>
<body>
<main>
<h1>Signed in</h1>
<p><a href="${href}">Continue</a></p>
</main>
</body>
</html>`;
}
