/**
 * API tokens: create (the token is returned once; only its sha256 is stored), list (never a
 * secret or hash), revoke. A workspace token with `tokens:write` manages its own workspace's
 * tokens and can only grant scopes it holds itself; admin tokens manage every workspace's
 * (naming it with `x-kiln-workspace`) and create further admin tokens, so the bootstrap
 * secret can be retired. Another workspace's token is answered 404, never 403. `whoami` tells
 * any valid token who it is.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { DisplayName, WhoamiSchema } from "@kiln-build/protocol";
import { and, asc, eq, isNull, type SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { generateToken, hashToken, SCOPES } from "../auth/tokens.ts";
import { tokens, workspaces } from "../db/schema/workspaces.ts";
import { badRequest, forbidden, notFound } from "../errors.ts";
import { bearerSecurity, errorResponses, iso, jsonBodyLimit, OkSchema, registerBearerScheme, workspaceOrNull } from "./common.ts";

/** The token sub-app, mounted at the root. */
export const tokensApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(tokensApp);

const ScopeSchema = z.enum(SCOPES);
const TokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(["admin", "api"]),
    workspaceId: z.string().nullable(),
    scopes: z.array(ScopeSchema),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi("Token");
const CreatedTokenSchema = TokenSchema.extend({
  token: z.string().openapi({ description: "The secret. Shown only in this response; store it now." }),
}).openapi("CreatedToken");

const CreateBody = z
  .object({
    name: DisplayName.openapi({ description: "1-64 characters of printable, well-formed Unicode." }),
    kind: z.enum(["api", "admin"]).default("api").openapi({ description: "`admin` needs an admin caller and holds every scope." }),
    scopes: z
      .array(ScopeSchema)
      .min(1)
      .max(SCOPES.length)
      .optional()
      .openapi({ description: "Required for `api` tokens; omitted for `admin`." }),
  })
  .strict()
  .openapi("TokenCreate");

const guard = [authenticate, requireScope("tokens:write")];

tokensApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/tokens",
    operationId: "createToken",
    tags: ["tokens"],
    summary: "Create an API token",
    description:
      "An `api` token belongs to the caller's workspace (admins name it with `x-kiln-workspace`). Non-admin callers can grant only scopes they hold.",
    security: bearerSecurity,
    middleware: [...guard, jsonBodyLimit(4 * 1024)],
    request: { body: { required: true, content: { "application/json": { schema: CreateBody } } } },
    responses: {
      201: { description: "Created; `token` is never shown again.", content: { "application/json": { schema: CreatedTokenSchema } } },
      ...errorResponses(400, 401, 403, 404, 413),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const auth = c.get("auth");
    let workspaceId: string | null = null;
    let scopes: string[];
    if (body.kind === "admin") {
      if (auth.kind !== "admin") throw forbidden("Only admin tokens can create admin tokens.");
      if (body.scopes) throw badRequest("Admin tokens hold every scope; omit `scopes`.");
      scopes = [...SCOPES];
    } else {
      if (!body.scopes) throw badRequest('API tokens need `scopes`, e.g. ["images:write","images:read"].');
      const missing = body.scopes.filter((s) => !auth.scopes.includes(s));
      if (missing.length > 0) throw forbidden(`A token cannot grant scopes it does not hold: ${missing.join(", ")}.`);
      workspaceId = await workspaceOf(c);
      scopes = [...new Set(body.scopes)];
    }
    const token = generateToken(body.kind);
    const row = await drizzle(c.env.DB)
      .insert(tokens)
      .values({
        id: `tok_${crypto.randomUUID().replaceAll("-", "")}`,
        workspaceId,
        kind: body.kind,
        hash: await hashToken(token),
        name: body.name,
        scopes,
      })
      .returning()
      .get();
    return c.json({ ...present(row), token }, 201);
  },
);

tokensApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/tokens",
    operationId: "listTokens",
    tags: ["tokens"],
    summary: "List tokens",
    description:
      "The caller's workspace's tokens; an admin caller without `x-kiln-workspace` lists the admin tokens. Secrets and hashes are never returned.",
    security: bearerSecurity,
    middleware: guard,
    responses: {
      200: {
        description: "Tokens, oldest first.",
        content: { "application/json": { schema: z.object({ tokens: z.array(TokenSchema) }) } },
      },
      ...errorResponses(401, 403, 404),
    },
  }),
  async (c) => {
    const workspaceId = await workspaceOrNull(c);
    const where = workspaceId ? eq(tokens.workspaceId, workspaceId) : isNull(tokens.workspaceId);
    const rows = await drizzle(c.env.DB).select().from(tokens).where(where).orderBy(asc(tokens.createdAt), asc(tokens.id)).all();
    return c.json({ tokens: rows.map(present) }, 200);
  },
);

tokensApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/tokens/{id}",
    operationId: "revokeToken",
    tags: ["tokens"],
    summary: "Revoke a token",
    description: "Revoking is immediate and idempotent. Another workspace's token answers 404.",
    security: bearerSecurity,
    middleware: guard,
    request: {
      params: z.object({
        id: z
          .string()
          .max(64)
          .openapi({ param: { name: "id", in: "path" } }),
      }),
    },
    responses: {
      200: { description: "Revoked.", content: { "application/json": { schema: OkSchema } } },
      ...errorResponses(401, 403, 404),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const auth = c.get("auth");
    // Admins reach every token; a workspace token only its own workspace's.
    const visible: SQL | undefined = auth.kind === "admin" ? undefined : eq(tokens.workspaceId, auth.workspaceId ?? "");
    const row = await drizzle(c.env.DB)
      .update(tokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(tokens.id, id), isNull(tokens.revokedAt), visible))
      .returning({ id: tokens.id })
      .get();
    if (!row) {
      // Already revoked counts as success, but only when the caller could see the token at all.
      const existing = await drizzle(c.env.DB)
        .select({ id: tokens.id })
        .from(tokens)
        .where(and(eq(tokens.id, id), visible))
        .get();
      if (!existing) throw notFound(`Token '${id}'`);
    }
    return c.json({ ok: true as const }, 200);
  },
);

tokensApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/whoami",
    operationId: "getWhoami",
    tags: ["tokens"],
    summary: "The calling token and its workspace",
    description:
      "Any valid token, whatever its scopes. `workspace` is null for an admin token that names none with `x-kiln-workspace`; the bootstrap admin token (Worker secret KILN_ADMIN_TOKEN) has the id `bootstrap`.",
    security: bearerSecurity,
    middleware: [authenticate],
    responses: {
      200: { description: "Who the token is.", content: { "application/json": { schema: WhoamiSchema.openapi("Whoami") } } },
      ...errorResponses(401, 404),
    },
  }),
  async (c) => {
    const auth = c.get("auth");
    const db = drizzle(c.env.DB);
    const workspaceId = await workspaceOrNull(c);
    const workspace = workspaceId
      ? await db.select({ id: workspaces.id, name: workspaces.name }).from(workspaces).where(eq(workspaces.id, workspaceId)).get()
      : undefined;
    const bootstrap = auth.tokenId === "bootstrap";
    const stored = bootstrap ? undefined : await db.select({ name: tokens.name }).from(tokens).where(eq(tokens.id, auth.tokenId)).get();
    const name = bootstrap ? "KILN_ADMIN_TOKEN (bootstrap)" : (stored?.name ?? auth.tokenId);
    const token = { id: auth.tokenId, name, kind: auth.kind, scopes: [...auth.scopes] };
    return c.json({ workspace: workspace ?? null, token }, 200);
  },
);

function present(row: typeof tokens.$inferSelect) {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    workspaceId: row.workspaceId,
    scopes: row.scopes as (typeof SCOPES)[number][],
    createdAt: iso(row.createdAt),
    revokedAt: iso(row.revokedAt),
  };
}
