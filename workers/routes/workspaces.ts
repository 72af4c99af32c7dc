/**
 * Workspaces (tenants), admin tokens only: create and list. A fresh deployment is bootstrapped
 * with the Worker secret KILN_ADMIN_TOKEN: create a workspace, then a token for it
 * (`POST /v1/tokens` with `x-kiln-workspace`).
 */

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { WorkspaceName } from "@kiln-build/protocol";
import { asc } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { authenticate } from "../auth/middleware.ts";
import { workspaces } from "../db/schema/workspaces.ts";
import { conflict } from "../errors.ts";
import { bearerSecurity, errorResponses, iso, jsonBodyLimit, registerBearerScheme, requireAdmin } from "./common.ts";

/** The workspace admin sub-app, mounted at the root. */
export const workspacesApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(workspacesApp);

const WorkspaceNameParam = WorkspaceName.openapi({ example: "acme" });

const WorkspaceSchema = z.object({ id: z.string(), name: WorkspaceNameParam, createdAt: z.string() }).openapi("Workspace");

workspacesApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/workspaces",
    operationId: "createWorkspace",
    tags: ["workspaces"],
    summary: "Create a workspace (admin)",
    security: bearerSecurity,
    middleware: [authenticate, requireAdmin, jsonBodyLimit(4 * 1024)],
    request: {
      body: {
        required: true,
        content: { "application/json": { schema: z.object({ name: WorkspaceNameParam }).strict().openapi("WorkspaceCreate") } },
      },
    },
    responses: {
      201: { description: "Created.", content: { "application/json": { schema: WorkspaceSchema } } },
      ...errorResponses(400, 401, 403, 409, 413),
    },
  }),
  async (c) => {
    const { name } = c.req.valid("json");
    const id = `ws_${crypto.randomUUID().replaceAll("-", "")}`;
    const row = await drizzle(c.env.DB).insert(workspaces).values({ id, name }).onConflictDoNothing().returning().get();
    if (!row) throw conflict("workspace_exists", `A workspace named '${name}' already exists.`);
    return c.json({ id: row.id, name: row.name, createdAt: iso(row.createdAt) }, 201);
  },
);

workspacesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/workspaces",
    operationId: "listWorkspaces",
    tags: ["workspaces"],
    summary: "List workspaces (admin)",
    security: bearerSecurity,
    middleware: [authenticate, requireAdmin],
    responses: {
      200: {
        description: "Every workspace, by name.",
        content: { "application/json": { schema: z.object({ workspaces: z.array(WorkspaceSchema) }) } },
      },
      ...errorResponses(401, 403),
    },
  }),
  async (c) => {
    const rows = await drizzle(c.env.DB).select().from(workspaces).orderBy(asc(workspaces.name)).all();
    return c.json({ workspaces: rows.map((r) => ({ id: r.id, name: r.name, createdAt: iso(r.createdAt) })) }, 200);
  },
);
