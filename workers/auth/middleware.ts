/**
 * Authentication for the API: a bearer token is either the bootstrap admin token (a Worker
 * secret, compared in constant time) or a stored token looked up by its sha256.
 */
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { createMiddleware } from "hono/factory";
import type { AppEnv, AuthContext } from "../app-env.ts";
import { tokens, workspaces } from "../db/schema/workspaces.ts";
import { badRequest, forbidden, notFound, unauthorized } from "../errors.ts";
import { hashToken, parseToken, SCOPES, type Scope, timingSafeEqualText } from "./tokens.ts";

/** Resolves the caller from `Authorization: Bearer ...` and stores it as `c.var.auth`. */
export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  if (!token) throw unauthorized();
  c.set("auth", await resolveToken(c.env, token));
  await next();
});

/** The caller for a token, or throws 401. Exported for the registry's token endpoint. */
export async function resolveToken(env: Env, token: string): Promise<AuthContext> {
  if (env.KILN_ADMIN_TOKEN && timingSafeEqualText(token, env.KILN_ADMIN_TOKEN)) {
    return { tokenId: "bootstrap", kind: "admin", workspaceId: null, scopes: [...SCOPES] };
  }
  if (!parseToken(token)) throw unauthorized();
  const hash = await hashToken(token);
  const row = await drizzle(env.DB)
    .select({ id: tokens.id, kind: tokens.kind, workspaceId: tokens.workspaceId, scopes: tokens.scopes })
    .from(tokens)
    .where(and(eq(tokens.hash, hash), isNull(tokens.revokedAt)))
    .get();
  if (!row) throw unauthorized();
  return { tokenId: row.id, kind: row.kind, workspaceId: row.workspaceId, scopes: row.scopes as Scope[] };
}

/** Requires a scope; admin tokens hold every scope. */
export function requireScope(scope: Scope) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const auth = c.get("auth");
    if (!auth.scopes.includes(scope))
      throw forbidden(`This token lacks the \`${scope}\` scope. Create one with it: \`kiln token create --scope ${scope}\`.`);
    await next();
  });
}

/**
 * The workspace a request acts in: the token's own, or for admin tokens the workspace named
 * by the `x-kiln-workspace` header.
 */
export async function workspaceOf(c: {
  get: (k: "auth") => AuthContext;
  req: { header: (n: string) => string | undefined };
  env: Env;
}): Promise<string> {
  const auth = c.get("auth");
  if (auth.workspaceId) return auth.workspaceId;
  const name = c.req.header("x-kiln-workspace");
  if (!name) throw badRequest("Admin tokens must name a workspace with the `x-kiln-workspace` header.");
  const row = await drizzle(c.env.DB).select({ id: workspaces.id }).from(workspaces).where(eq(workspaces.name, name)).get();
  if (!row) throw notFound(`Workspace '${name}'`);
  return row.id;
}
