/**
 * Encryption at rest for secret values and fleet signing secrets. Pure WebCrypto (runs on
 * workerd and Node): AES-256-GCM under the key-encryption key from the Worker secret
 * KILN_SECRET_KEY (base64 of 32 bytes), a fresh random 12-byte IV per write, and additional
 * data that names what the ciphertext belongs to, so a ciphertext copied into another row
 * fails to open instead of decrypting as the wrong secret.
 *
 * Sealed format (what D1 stores): base64(iv || ciphertext || 16-byte tag).
 *
 * @example
 * const sealed = await encryptJson(env, secretAad(workspaceId, "db"), { PASSWORD: "..." });
 * const values = await decryptJson(env, secretAad(workspaceId, "db"), sealed);
 */
import { ApiError } from "../errors.ts";

const IV_BYTES = 12;
const KEY_BYTES = 32;

/** Where the key-encryption key comes from: the Worker's `env` (or anything with the same field). */
export type SecretKeySource = { KILN_SECRET_KEY?: string };

/** Opening failed: wrong key, wrong additional data, or a corrupted or tampered ciphertext. */
export class SecretBoxError extends Error {
  constructor() {
    // Deliberately no detail: nothing about the key or the plaintext may reach a log.
    super("Ciphertext does not open under this key and additional data.");
  }
}

/**
 * Additional data binding a workspace secret's ciphertext to its workspace and name. The name
 * is what the issue asks for; the workspace id is added so a row copied between workspaces
 * does not open either.
 */
export function secretAad(workspaceId: string, name: string): string {
  return `kiln/secret/${workspaceId}/${name}`;
}

/** Additional data binding a fleet's signing-secret ciphertext to the fleet id. */
export function fleetAad(fleetId: string): string {
  return `kiln/fleet/${fleetId}`;
}

// Importing the key costs little, but one isolate serves many requests: keep the CryptoKey.
const keyCache = new Map<string, Promise<CryptoKey>>();

function keyFor(source: SecretKeySource): Promise<CryptoKey> {
  const encoded = source.KILN_SECRET_KEY;
  if (!encoded) {
    throw new ApiError(
      503,
      "secret_key_missing",
      "The server has no KILN_SECRET_KEY. An operator must set it: `openssl rand -base64 32 | wrangler secret put KILN_SECRET_KEY`.",
    );
  }
  let cached = keyCache.get(encoded);
  if (!cached) {
    const raw = decodeBase64(encoded);
    if (!raw || raw.byteLength !== KEY_BYTES) {
      throw new ApiError(
        503,
        "secret_key_invalid",
        "The server's KILN_SECRET_KEY is not base64 of 32 bytes. An operator must replace it: `openssl rand -base64 32 | wrangler secret put KILN_SECRET_KEY`.",
      );
    }
    cached = crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
    keyCache.set(encoded, cached);
  }
  return cached;
}

/** Encrypts `value` (JSON-serialisable) under the key-encryption key with `aad` as additional data. */
export async function encryptJson(source: SecretKeySource, aad: string, value: unknown): Promise<string> {
  const key = await keyFor(source);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const plaintext = new TextEncoder().encode(JSON.stringify(value));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(aad) }, key, plaintext),
  );
  const out = new Uint8Array(IV_BYTES + sealed.byteLength);
  out.set(iv, 0);
  out.set(sealed, IV_BYTES);
  return encodeBase64(out);
}

/**
 * Opens what `encryptJson` sealed with the same `aad`. Throws `SecretBoxError` for any
 * failure (wrong key or additional data, tampering); the result is `unknown` so callers
 * validate its shape with zod.
 */
export async function decryptJson(source: SecretKeySource, aad: string, sealed: string): Promise<unknown> {
  const key = await keyFor(source);
  const bytes = decodeBase64(sealed);
  // 12-byte IV plus at least the 16-byte tag.
  if (!bytes || bytes.byteLength < IV_BYTES + 16) throw new SecretBoxError();
  let plaintext: ArrayBuffer;
  try {
    plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES), additionalData: new TextEncoder().encode(aad) },
      key,
      bytes.subarray(IV_BYTES),
    );
  } catch {
    throw new SecretBoxError();
  }
  try {
    return JSON.parse(new TextDecoder().decode(plaintext));
  } catch {
    throw new SecretBoxError();
  }
}

function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.byteLength; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function decodeBase64(text: string): Uint8Array | null {
  try {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}
