/**
 * The effectful half of browser sessions (decision 0021; the pure half is page-session.ts):
 * minting a link for the calling token's workspace, exchanging a link once for a session, and
 * checking a session on every page view. Every refusal is the same 403 `session_required`
 * page, whatever the reason (expired, forged, used, another workspace's, revoked token), so a
 * refusal tells an attacker nothing about which check failed.
 */
import { and, eq, isNull, lt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { pageLinkUses } from "../db/schema/page-links.ts";
import { tokens, workspaces } from "../db/schema/workspaces.ts";
import { ApiError } from "../errors.ts";
import {
  LinkClaims,
  newLinkId,
  PAGE_SESSION_TTL_SECONDS,
  SessionClaims,
  sessionPath,
  signPageToken,
  verifyPageToken,
} from "./page-session.ts";

/** The workspace a verified browser session may read. */
export type PageSession = { workspaceId: string; workspaceName: string; tokenId: string };

/** The one refusal of every page check. */
export const sessionRequired = () =>
  new ApiError(
    403,
    "session_required",
    "This page needs a browser session for this workspace. Run `kiln open` for a new link (links work once and expire after two minutes).",
  );

/** A signed link to `next` (a path under the workspace's pages), valid for `ttlSeconds`. */
export async function mintPageLink(
  env: Env,
  params: { workspaceId: string; workspaceName: string; tokenId: string; next: string; ttlSeconds: number; origin: string },
  nowMs: number,
): Promise<{ url: string; expiresAt: Date }> {
  const exp = nowMs + params.ttlSeconds * 1000;
  const claims: LinkClaims = { v: 1, ws: params.workspaceId, tok: params.tokenId, jti: newLinkId(), next: params.next, exp };
  const token = await signPageToken(env, "link", claims);
  return { url: `${params.origin}${sessionPath(params.workspaceName)}/open?t=${token}`, expiresAt: new Date(exp) };
}

/**
 * Exchanges a link for a session token: signature, expiry, workspace, the minting token still
 * valid, then one-time use (the link's id inserted; an existing row means it was used).
 */
export async function exchangePageLink(
  env: Env,
  workspaceName: string,
  linkToken: string,
  nowMs: number,
): Promise<{ session: string; next: string }> {
  const claims = await verifyPageToken(env, "link", LinkClaims, linkToken, nowMs);
  if (!claims) throw sessionRequired();
  const workspace = await activeWorkspace(env, workspaceName, claims.ws, claims.tok);
  if (!workspace || !claims.next.startsWith(`${sessionPath(workspaceName)}`)) throw sessionRequired();
  const d = drizzle(env.DB);
  const [, inserted] = await d.batch([
    d.delete(pageLinkUses).where(lt(pageLinkUses.expiresAt, new Date(nowMs))),
    d
      .insert(pageLinkUses)
      .values({ id: claims.jti, workspaceId: claims.ws, expiresAt: new Date(claims.exp), usedAt: new Date(nowMs) })
      .onConflictDoNothing()
      .returning({ id: pageLinkUses.id }),
  ]);
  if (inserted.length === 0) throw sessionRequired();
  const session: SessionClaims = { v: 1, ws: claims.ws, tok: claims.tok, exp: nowMs + PAGE_SESSION_TTL_SECONDS * 1000 };
  return { session: await signPageToken(env, "session", session), next: claims.next };
}

/** The session of a page request for `workspaceName`, or throws the 403. */
export async function requirePageSession(
  env: Env,
  workspaceName: string,
  sessionToken: string | null,
  nowMs: number,
): Promise<PageSession> {
  if (!sessionToken) throw sessionRequired();
  const claims = await verifyPageToken(env, "session", SessionClaims, sessionToken, nowMs);
  if (!claims) throw sessionRequired();
  const workspace = await activeWorkspace(env, workspaceName, claims.ws, claims.tok);
  if (!workspace) throw sessionRequired();
  return { workspaceId: workspace.id, workspaceName, tokenId: claims.tok };
}

/**
 * The workspace named `name` if its id is `workspaceId` and the token `tokenId` is still
 * unrevoked and allowed there (its own workspace's, or an admin token's): revoking the API
 * token ends every browser session it opened.
 */
async function activeWorkspace(env: Env, name: string, workspaceId: string, tokenId: string): Promise<{ id: string } | null> {
  const d = drizzle(env.DB);
  const [wsRows, tokenRows] = await d.batch([
    d
      .select({ id: workspaces.id })
      .from(workspaces)
      .where(and(eq(workspaces.name, name), eq(workspaces.id, workspaceId))),
    d
      .select({ kind: tokens.kind, workspaceId: tokens.workspaceId })
      .from(tokens)
      .where(and(eq(tokens.id, tokenId), isNull(tokens.revokedAt))),
  ]);
  const workspace = wsRows[0];
  if (!workspace) return null;
  if (tokenId === "bootstrap") return env.KILN_ADMIN_TOKEN ? workspace : null;
  const token = tokenRows[0];
  if (!token) return null;
  return token.kind === "admin" || token.workspaceId === workspace.id ? workspace : null;
}
