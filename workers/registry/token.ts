/**
 * Registry bearer tokens (the Docker token flow) and credential parsing. Pure (WebCrypto).
 *
 * `GET /v2/token` exchanges Basic credentials for a short-lived token that lists the
 * repositories and actions granted: `base64url(json) "." base64url(HMAC-SHA256)`, keyed by
 * HKDF(KILN_SECRET_KEY, info "kiln registry bearer v1") so the key-encryption key itself is
 * never used as a MAC key. Registry requests then verify the token without touching D1.
 */
import { z } from "zod";
import { signClaims, verifiedClaims } from "../auth/signed-token.ts";
import type { RegistryAction } from "./reference.ts";

/** Lifetime of an issued bearer token; clients fetch a new one when it runs out. */
export const BEARER_TTL_SECONDS = 15 * 60;

const Claims = z.object({
  v: z.literal(1),
  /** The credential it was issued for (token id, `job:<id>`, or `anonymous`). */
  sub: z.string(),
  /** The caller's workspace id; null for admin and anonymous. */
  ws: z.string().nullable(),
  /** Repository name -> granted actions. */
  acc: z.record(z.string(), z.array(z.enum(["pull", "push", "delete"]))),
  /** Job tokens only: repository name -> the tags it may write there (none in a repository not listed). */
  tags: z.record(z.string(), z.array(z.string())).optional(),
  iat: z.number().int(),
  exp: z.number().int(),
});
/** What a bearer token asserts. */
export type BearerClaims = z.infer<typeof Claims>;

const keys = new Map<string, Promise<CryptoKey>>();

/** The HMAC key for bearer tokens, derived from the Worker secret (base64 of 32 bytes). */
export function bearerKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = (async () => {
      const ikm = await crypto.subtle.importKey("raw", base64Bytes(secret), "HKDF", false, ["deriveKey"]);
      return crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode("kiln registry bearer v1") },
        ikm,
        { name: "HMAC", hash: "SHA-256", length: 256 },
        false,
        ["sign", "verify"],
      );
    })();
    keys.set(secret, key);
  }
  return key;
}

/** Signs claims into a bearer token. */
export async function signBearer(key: CryptoKey, claims: BearerClaims): Promise<string> {
  return signClaims(key, claims);
}

/** The claims of a valid, unexpired token, or null. `verify` compares the MAC in constant time. */
export async function verifyBearer(key: CryptoKey, token: string, nowSeconds: number): Promise<BearerClaims | null> {
  const claims = await verifiedClaims(key, token, Claims, 16_384);
  return claims !== null && claims.exp > nowSeconds ? claims : null;
}

/** Username and password of `Authorization: Basic ...`, or null. */
export function parseBasic(header: string | undefined): { username: string; password: string } | null {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header ?? "");
  if (!match) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(base64Bytes(match[1]!));
  } catch {
    return null;
  }
  const colon = text.indexOf(":");
  return colon < 0 ? null : { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The token of `Authorization: Bearer ...`, or null. */
export function parseBearer(header: string | undefined): string | null {
  return /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1] ?? null;
}

/**
 * The `WWW-Authenticate` challenge a 401 carries: where to get a token and, when the request
 * concerned a repository, the scope to ask for.
 */
export function challenge(
  origin: string,
  scope: { name: string; actions: readonly RegistryAction[] } | null,
  error?: "invalid_token" | "insufficient_scope",
): string {
  let header = `Bearer realm="${origin}/v2/token",service="kiln"`;
  if (scope) header += `,scope="repository:${scope.name}:${scope.actions.join(",")}"`;
  if (error) header += `,error="${error}"`;
  return header;
}

function base64Bytes(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
