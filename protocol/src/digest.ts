/**
 * Content digests as every Kiln part writes them: `sha256:<64 lowercase hex>`. One home for
 * the syntax and the hashing so the SDK, the runner and the Worker cannot disagree on it.
 * Web Crypto only: runs on workerd and Node.
 */
import { z } from "zod";

/** `sha256:` followed by 64 lowercase hex digits. */
export const SHA256_DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** A layer key or token hash: 64 lowercase hex digits. */
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;

/** zod schema of a `sha256:<hex>` digest. */
export const Sha256Digest = z.string().regex(SHA256_DIGEST_PATTERN, "expected sha256:<64 lowercase hex digits>");

/** zod schema of a layer key (64 lowercase hex digits). */
export const LayerKey = z.string().regex(SHA256_HEX_PATTERN, "expected 64 lowercase hex digits");

/** Lowercase hex of raw bytes. */
export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let hex = "";
  for (const byte of view) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** sha256 of a UTF-8 string or of bytes, as lowercase hex. */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return toHex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** `sha256:<hex>` of raw digest bytes. */
export function digestOfBytes(hash: ArrayBuffer | Uint8Array): string {
  return `sha256:${toHex(hash)}`;
}

/** The hex part of a `sha256:<hex>` digest. */
export function digestHex(digest: string): string {
  return digest.slice("sha256:".length);
}
