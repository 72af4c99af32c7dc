/**
 * Who may do what in the registry. Credentials are a Kiln API token (any username), a
 * per-job token (username `kiln-job`), or a bearer token from `GET /v2/token`; repositories
 * are `<workspace name>/<path>` and a caller acts only in its own workspace (admins in all).
 * A job token reaches less: only the repositories and tags of its scope (workers/auth/job-scope.ts).
 * Pulls of public repositories need no credentials. Denials never say whether a repository
 * exists: another workspace's private repository and a missing one answer alike.
 */

import { eq } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../app-env.ts";
import { resolveToken } from "../auth/middleware.ts";
import { hashToken } from "../auth/tokens.ts";
import { type JobTokenScope, jobTokens } from "../db/schema/job-tokens.ts";
import { ApiError } from "../errors.ts";
import { RegistryError, registryUnauthorized } from "./errors.ts";
import { type RegistryAction, workspaceNameOf } from "./reference.ts";
import { db, repository, workspaceIdByName } from "./store.ts";
import { type BearerClaims, bearerKey, challenge, parseBasic, parseBearer, verifyBearer } from "./token.ts";

/** Username runners log in with; the password is the job's registry token. */
export const JOB_USERNAME = "kiln-job";

/** A caller resolved from credentials: what it may do in which workspace. */
export type Principal = {
  sub: string;
  /** Null: every workspace (admin tokens). */
  workspaceId: string | null;
  actions: RegistryAction[];
  /** Seconds since the epoch after which the credential stops working, if it expires. */
  expiresAt: number | null;
  /** Job tokens only: the repositories and tags it reaches, within `actions`. */
  scope?: JobTokenScope;
};

// A job token stored without a scope (minted before scopes were stored) reaches nothing.
const NO_SCOPE: JobTokenScope = { push: {}, pull: [] };

/** The caller of one registry request. */
export type RegistryCaller = { kind: "anonymous" } | { kind: "principal"; principal: Principal } | { kind: "bearer"; claims: BearerClaims };

/** Resolves Basic credentials; null when they are wrong. */
export async function principalOf(env: Env, username: string, password: string, nowMs: number): Promise<Principal | null> {
  if (username === JOB_USERNAME) {
    const row = await db(env)
      .select()
      .from(jobTokens)
      .where(eq(jobTokens.hash, await hashToken(password)))
      .get();
    if (!row || row.expiresAt.getTime() <= nowMs) return null;
    const actions = row.actions.filter((a): a is RegistryAction => a === "pull" || a === "push");
    const expiresAt = Math.floor(row.expiresAt.getTime() / 1000);
    return { sub: `job:${row.jobId}`, workspaceId: row.workspaceId, actions, expiresAt, scope: row.scope ?? NO_SCOPE };
  }
  try {
    const auth = await resolveToken(env, password);
    const actions = new Set<RegistryAction>();
    if (auth.kind === "admin") for (const a of ["pull", "push", "delete"] as const) actions.add(a);
    if (auth.scopes.includes("images:read")) actions.add("pull");
    // Pushing needs to read what it pushed (HEAD before upload), so write implies read.
    if (auth.scopes.includes("images:write")) for (const a of ["pull", "push", "delete"] as const) actions.add(a);
    return { sub: auth.tokenId, workspaceId: auth.workspaceId, actions: [...actions].sort(), expiresAt: null };
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

/** The actions `principal` holds on `repo`. */
export async function allowedFor(env: Env, principal: Principal, repo: string): Promise<RegistryAction[]> {
  if (principal.workspaceId === null) return principal.actions;
  const owner = await workspaceIdByName(db(env), workspaceNameOf(repo));
  if (owner !== principal.workspaceId) return [];
  const scope = principal.scope;
  if (!scope) return principal.actions;
  const reach: RegistryAction[] = Object.hasOwn(scope.push, repo) ? ["pull", "push"] : scope.pull.includes(repo) ? ["pull"] : [];
  return principal.actions.filter((a) => reach.includes(a));
}

/**
 * The tags `caller` may write in `repo` (null: any). A job token writes only its layers' tags;
 * a bearer token issued for one carries them (`tags`), and a job's bearer without them none.
 */
export function writableTags(caller: RegistryCaller, repo: string): readonly string[] | null {
  if (caller.kind === "principal") return caller.principal.scope ? (caller.principal.scope.push[repo] ?? []) : null;
  if (caller.kind === "bearer") {
    const tags = caller.claims.tags;
    if (tags) return Object.hasOwn(tags, repo) ? tags[repo]! : [];
    return caller.claims.sub.startsWith("job:") ? [] : null;
  }
  return null;
}

/** The `tags` claim of a bearer token granting `acc` to `principal`: a job's tags in the repositories it may push. */
export function bearerTags(principal: Principal | null, acc: Record<string, RegistryAction[]>): Record<string, string[]> | undefined {
  const scope = principal?.scope;
  if (!scope) return undefined;
  const tags: Record<string, string[]> = {};
  for (const [repo, actions] of Object.entries(acc)) if (actions.includes("push")) tags[repo] = scope.push[repo] ?? [];
  return tags;
}

/** Requires that `caller` may point tag `tag` of `repo` at a manifest, else 403 DENIED. */
export function authorizeTag(caller: RegistryCaller, repo: string, tag: string): void {
  const tags = writableTags(caller, repo);
  if (tags === null || tags.includes(tag)) return;
  throw new RegistryError(403, "DENIED", "this job's token may write only its own layers' tags; push by digest or to one of them", {
    repository: repo,
    tag,
  });
}

/** Reads the request's credentials; wrong ones answer 401 with a challenge. */
export async function callerOf(c: Context<AppEnv>): Promise<RegistryCaller> {
  const header = c.req.header("authorization");
  if (!header) return { kind: "anonymous" };
  const origin = new URL(c.req.url).origin;
  const bearer = parseBearer(header);
  if (bearer) {
    const claims = await verifyBearer(await bearerKey(secretOf(c.env)), bearer, Math.floor(Date.now() / 1000));
    if (!claims) throw registryUnauthorized(challenge(origin, null, "invalid_token"), "invalid or expired bearer token");
    return { kind: "bearer", claims };
  }
  const basic = parseBasic(header);
  const principal = basic ? await principalOf(c.env, basic.username, basic.password, Date.now()) : null;
  if (!principal) throw registryUnauthorized(challenge(origin, null), "invalid username or password");
  return { kind: "principal", principal };
}

/**
 * Requires every action in `actions` on `repo`, else 401 (no credentials: challenge with the
 * scope to ask for) or 403 DENIED (credentials that do not reach this repository).
 */
export async function authorize(c: Context<AppEnv>, caller: RegistryCaller, repo: string, actions: RegistryAction[]): Promise<void> {
  let held: RegistryAction[] = [];
  if (caller.kind === "bearer") held = caller.claims.acc[repo] ?? [];
  if (caller.kind === "principal") held = await allowedFor(c.env, caller.principal, repo);
  const missing = actions.filter((a) => !held.includes(a));
  if (missing.length === 0) return;
  if (missing.length === 1 && missing[0] === "pull" && (await repository(db(c.env), repo))?.public) return;
  if (caller.kind === "anonymous") throw registryUnauthorized(challenge(new URL(c.req.url).origin, { name: repo, actions }));
  if (caller.kind === "bearer") {
    // Distribution's answer to a token without the scope: 401 naming the scope, so clients fetch a new token.
    throw registryUnauthorized(challenge(new URL(c.req.url).origin, { name: repo, actions }, "insufficient_scope"), "insufficient scope");
  }
  throw new RegistryError(403, "DENIED", "requested access to the resource is denied", { repository: repo, actions: missing });
}

/** The Worker secret bearer tokens are derived from; 503 when the deployment lacks it. */
export function secretOf(env: Env): string {
  if (!env.KILN_SECRET_KEY) throw new ApiError(503, "not_configured", "KILN_SECRET_KEY is not set; see docs/deploy.md.");
  return env.KILN_SECRET_KEY;
}

/** Narrows a caller to its workspace id for new repositories (admins act in the repository's own workspace). */
export async function ownerWorkspace(env: Env, repo: string): Promise<string> {
  const id = await workspaceIdByName(db(env), workspaceNameOf(repo));
  if (!id) throw noWorkspace(repo);
  return id;
}

/** The answer for a repository whose namespace no workspace owns (404 NAME_UNKNOWN). */
export function noWorkspace(repo: string): RegistryError {
  return new RegistryError(404, "NAME_UNKNOWN", "no workspace owns this repository namespace", { name: repo });
}
