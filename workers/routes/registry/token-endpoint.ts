/**
 * `GET /v2/token` (and the OAuth2 password grant on `POST /v2/token`): the Docker token flow.
 * Basic credentials (any username with a Kiln API token, or `kiln-job` with a job token) are
 * exchanged for a short-lived bearer token granting the requested scopes the caller holds;
 * no credentials get an anonymous token that reaches public repositories only.
 */
import type { Context } from "hono";
import type { AppEnv } from "../../app-env.ts";
import { allowedFor, bearerTags, type Principal, principalOf, secretOf } from "../../registry/auth.ts";
import { registryUnauthorized } from "../../registry/errors.ts";
import { parseScopes, type RegistryAction } from "../../registry/reference.ts";
import { db, repository } from "../../registry/store.ts";
import { BEARER_TTL_SECONDS, bearerKey, parseBasic, signBearer } from "../../registry/token.ts";

/** Issues a bearer token. */
export async function issueToken(c: Context<AppEnv>): Promise<Response> {
  let username: string | undefined;
  let password: string | undefined;
  let scopes = c.req.queries("scope") ?? [];
  if (c.req.method === "POST") {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    if (typeof form.username === "string" && typeof form.password === "string")
      ({ username, password } = form as { username: string; password: string });
    if (typeof form.scope === "string") scopes = [form.scope];
  }
  const basic = parseBasic(c.req.header("authorization"));
  if (basic) ({ username, password } = basic);
  const now = Date.now();
  let principal: Principal | null = null;
  if (password !== undefined) {
    principal = await principalOf(c.env, username ?? "", password, now);
    if (!principal) throw registryUnauthorized('Basic realm="kiln"', "invalid username or password");
  }
  const iat = Math.floor(now / 1000);
  const exp = Math.min(iat + BEARER_TTL_SECONDS, principal?.expiresAt ?? Infinity);
  const acc: Record<string, RegistryAction[]> = {};
  for (const scope of parseScopes(scopes)) {
    const held = principal ? await allowedFor(c.env, principal, scope.name) : [];
    let granted = scope.actions.filter((a) => held.includes(a));
    if (scope.actions.includes("pull") && !granted.includes("pull") && (await repository(db(c.env), scope.name))?.public)
      granted = [...granted, "pull"];
    if (granted.length) acc[scope.name] = granted.sort();
  }
  const tags = bearerTags(principal, acc);
  const token = await signBearer(await bearerKey(secretOf(c.env)), {
    v: 1,
    sub: principal?.sub ?? "anonymous",
    ws: principal?.workspaceId ?? null,
    acc,
    ...(tags ? { tags } : {}),
    iat,
    exp,
  });
  return c.json({ token, access_token: token, expires_in: exp - iat, issued_at: new Date(iat * 1000).toISOString() });
}
