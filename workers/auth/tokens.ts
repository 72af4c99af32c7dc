/**
 * API token format and hashing. Pure (WebCrypto only).
 *
 * A token is `kiln_<kind>_<32 base62 chars><6 base62 chars of CRC-32>`: the checksum lets
 * clients and secret scanners reject a mistyped or truncated token without a database
 * lookup; only sha256(token) is stored.
 */
import { sha256Hex } from "@kiln-build/protocol";

/** Token kinds: `admin` acts across workspaces; `api` belongs to one workspace. */
export type TokenKind = "admin" | "api";

/**
 * Every scope a token can hold. `fleets:admin` marks fleets trusted with secrets (they then
 * receive secret values), so it is as strong as `secrets:read`; `fleets:write` cannot.
 */
export const SCOPES = [
  "images:read",
  "images:write",
  "secrets:read",
  "secrets:write",
  "tags:write",
  "fleets:read",
  "fleets:write",
  "fleets:admin",
  "tokens:write",
  "webhooks:read",
  "webhooks:write",
] as const;
/** One permission. */
export type Scope = (typeof SCOPES)[number];

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TOKEN = /^kiln_(admin|api)_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;

function base62(bytes: Uint8Array): string {
  return [...bytes].map((b) => BASE62[b % 62]).join("");
}

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function checksum(body: string): string {
  let n = crc32(body);
  let out = "";
  for (let i = 0; i < 6; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** A fresh random token of `kind`. */
export function generateToken(kind: TokenKind): string {
  // Rejection-free mapping of 256 values onto 62 skews slightly; 32 chars keep > 180 bits.
  const body = `kiln_${kind}_${base62(crypto.getRandomValues(new Uint8Array(32)))}`;
  return `${body}${checksum(body)}`;
}

/** The kind of a well-formed token with a valid checksum, or null. */
export function parseToken(token: string): TokenKind | null {
  const match = TOKEN.exec(token);
  if (!match) return null;
  const body = `kiln_${match[1]}_${match[2]}`;
  return checksum(body) === match[3] ? (match[1] as TokenKind) : null;
}

/** sha256(token) as lowercase hex: what the database stores and looks up. */
export async function hashToken(token: string): Promise<string> {
  return sha256Hex(token);
}

/** Constant-time string comparison for secrets. */
export function timingSafeEqualText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  if (x.byteLength !== y.byteLength) {
    // Compare against itself so the time does not depend on where the lengths differ.
    crypto.subtle.timingSafeEqual(x, x);
    return false;
  }
  return crypto.subtle.timingSafeEqual(x, y);
}
