/**
 * Browser sessions for the workspace's pages (decision 0021). No API token ever reaches a
 * browser: `POST /v1/workspaces/current/page-links` mints a short-lived, one-time, signed
 * link; the page exchanges it for a session cookie scoped to `/w/<workspace>`; the cookie
 * opens read-only pages of that one workspace and nothing under `/v1`.
 *
 * Both the link token and the cookie are `base64url(JSON claims) "." base64url(HMAC-SHA256)`
 * under keys derived (HKDF) from the Worker secret KILN_SECRET_KEY, one key per purpose, so a
 * link can never be replayed as a cookie or the other way round. This module is the pure
 * part (sign, verify, cookie text); routes do the D1 checks (one-time use, revoked token).
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import { base64url, signClaims, verifiedClaims } from "./signed-token.ts";

/** How long a minted link can be exchanged, by default and at most (seconds). */
export const PAGE_LINK_TTL_SECONDS = 120;
export const PAGE_LINK_MAX_TTL_SECONDS = 600;
/** How long a browser session lasts (seconds); the API token behind it must stay unrevoked too. */
export const PAGE_SESSION_TTL_SECONDS = 8 * 3600;
/** The session cookie's name. */
export const PAGE_SESSION_COOKIE = "kiln_session";

// Tokens longer than this are refused before any crypto: a cookie or query value is attacker-sized.
const MAX_TOKEN_CHARS = 2048;

/** What a link says: which workspace, minted by which token, where to land, until when. */
export const LinkClaims = z.object({
  v: z.literal(1),
  /** Workspace id. */
  ws: z.string().min(1).max(64),
  /** Id of the API token that minted it (`bootstrap` for the bootstrap admin token). */
  tok: z.string().min(1).max(64),
  /** Random link id, recorded when the link is used (one-time use). */
  jti: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  /** Path to land on after the exchange; always under `/w/<workspace>`. */
  next: z.string().min(1).max(512),
  /** Expiry, epoch ms. */
  exp: z.number().int(),
});
/** A link's claims. */
export type LinkClaims = z.infer<typeof LinkClaims>;

/** What a session cookie says. */
export const SessionClaims = z.object({
  v: z.literal(1),
  ws: z.string().min(1).max(64),
  tok: z.string().min(1).max(64),
  exp: z.number().int(),
});
/** A session's claims. */
export type SessionClaims = z.infer<typeof SessionClaims>;

/** Which key signs: links and sessions never share one. */
export type TokenPurpose = "link" | "session";

/** Where the root secret comes from (the Worker's `env`). */
export type PageKeySource = { KILN_SECRET_KEY?: string };

const keyCache = new Map<string, Promise<CryptoKey>>();

function keyFor(source: PageKeySource, purpose: TokenPurpose): Promise<CryptoKey> {
  const encoded = source.KILN_SECRET_KEY;
  if (!encoded) {
    throw new ApiError(
      503,
      "secret_key_missing",
      "The server has no KILN_SECRET_KEY. An operator must set it: `openssl rand -base64 32 | wrangler secret put KILN_SECRET_KEY`.",
    );
  }
  const cacheKey = `${purpose}:${encoded}`;
  let key = keyCache.get(cacheKey);
  if (!key) {
    key = deriveKey(encoded, purpose);
    keyCache.set(cacheKey, key);
  }
  return key;
}

// HKDF, so the AES key that seals secrets is never used as an HMAC key itself.
async function deriveKey(encoded: string, purpose: TokenPurpose): Promise<CryptoKey> {
  const raw = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
  const root = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode(`kiln/page-${purpose}/v1`) },
    root,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign", "verify"],
  );
}

/** Signs `claims` for `purpose`. */
export async function signPageToken(source: PageKeySource, purpose: TokenPurpose, claims: LinkClaims | SessionClaims): Promise<string> {
  return signClaims(await keyFor(source, purpose), claims);
}

/**
 * The claims of `token` if it was signed for `purpose` by this server and has not expired at
 * `nowMs`, else null (forged, tampered, expired, malformed: the caller refuses all alike).
 */
export async function verifyPageToken<T extends LinkClaims | SessionClaims>(
  source: PageKeySource,
  purpose: TokenPurpose,
  schema: z.ZodType<T>,
  token: string,
  nowMs: number,
): Promise<T | null> {
  const claims = await verifiedClaims(await keyFor(source, purpose), token, schema, MAX_TOKEN_CHARS);
  return claims !== null && claims.exp > nowMs ? claims : null;
}

/** A fresh random link id (128 bits). */
export function newLinkId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/** The path a workspace's session cookie is scoped to (and every page it opens lives under). */
export function sessionPath(workspaceName: string): string {
  return `/w/${encodeURIComponent(workspaceName)}`;
}

/**
 * The `Set-Cookie` value of a session: HttpOnly (no page script can read it), SameSite=Strict
 * (never sent on a cross-site request), Path-scoped to one workspace's pages, Secure whenever
 * the page is served over https (plain http only happens on a local `wrangler dev`).
 */
export function sessionCookie(token: string, workspaceName: string, secure: boolean): string {
  return [
    `${PAGE_SESSION_COOKIE}=${token}`,
    `Path=${sessionPath(workspaceName)}`,
    `Max-Age=${PAGE_SESSION_TTL_SECONDS}`,
    "HttpOnly",
    "SameSite=Strict",
    ...(secure ? ["Secure"] : []),
  ].join("; ");
}

/** The session token from a `Cookie` header, or null. */
export function sessionTokenFrom(cookieHeader: string | undefined): string | null {
  if (!cookieHeader) return null;
  for (const part of cookieHeader.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === PAGE_SESSION_COOKIE) return rest.join("=") || null;
  }
  return null;
}
