/**
 * Self-contained signed tokens: `base64url(JSON claims) "." base64url(HMAC-SHA256)`. Used for the
 * registry's bearer tokens and the status pages' links and sessions; each caller owns its key,
 * its claims schema and its expiry check (their clocks count in different units).
 */
import type { z } from "zod";

/** Signs `claims` with `key` (an HMAC-SHA256 key). */
export async function signClaims(key: CryptoKey, claims: unknown): Promise<string> {
  const body = base64url(new TextEncoder().encode(JSON.stringify(claims)));
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body));
  return `${body}.${base64url(new Uint8Array(mac))}`;
}

/**
 * The claims of `token` when `key` signed it and they match `schema`, else null (forged, tampered,
 * malformed or longer than `maxChars`: callers refuse all alike). `verify` compares in constant time.
 */
export async function verifiedClaims<T>(key: CryptoKey, token: string, schema: z.ZodType<T>, maxChars: number): Promise<T | null> {
  if (token.length > maxChars) return null;
  const [body, mac, extra] = token.split(".");
  if (!body || !mac || extra !== undefined) return null;
  const macBytes = fromBase64url(mac);
  if (!macBytes || !(await crypto.subtle.verify("HMAC", key, macBytes, new TextEncoder().encode(body)))) return null;
  const json = fromBase64url(body);
  if (!json) return null;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(json));
  } catch {
    return null;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/** Unpadded base64url of `bytes`. */
export function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4)), (c) =>
      c.charCodeAt(0),
    );
  } catch {
    return null;
  }
}
