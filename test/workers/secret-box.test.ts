// AES-GCM encryption at rest: round trip, additional-data binding, tampering, key handling.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../workers/errors.ts";
import { decryptJson, encryptJson, fleetAad, SecretBoxError, secretAad } from "../../workers/secrets/secret-box.ts";

const key = { KILN_SECRET_KEY: env.KILN_SECRET_KEY };
const otherKey = { KILN_SECRET_KEY: btoa(String.fromCharCode(...new Uint8Array(32).fill(7))) };

describe("secret box", () => {
  it("round-trips JSON values", async () => {
    const value = { PASSWORD: "hunter2", TOKEN: "ünïcödé ✓", EMPTY: "" };
    const sealed = await encryptJson(key, secretAad("ws_1", "db"), value);
    expect(await decryptJson(key, secretAad("ws_1", "db"), sealed)).toEqual(value);
  });

  it("stores base64(iv || ciphertext || tag) with a fresh IV per write", async () => {
    const a = await encryptJson(key, "aad", { K: "v" });
    const b = await encryptJson(key, "aad", { K: "v" });
    expect(a).not.toBe(b);
    const raw = Uint8Array.from(atob(a), (ch) => ch.charCodeAt(0));
    // 12-byte IV + len('{"K":"v"}') = 9 bytes of ciphertext + 16-byte tag.
    expect(raw.byteLength).toBe(12 + 9 + 16);
    expect(a).not.toContain('v"');
  });

  it("refuses to open under different additional data (name, workspace, or fleet)", async () => {
    const sealed = await encryptJson(key, secretAad("ws_1", "db"), { P: "x" });
    await expect(decryptJson(key, secretAad("ws_1", "db2"), sealed)).rejects.toBeInstanceOf(SecretBoxError);
    await expect(decryptJson(key, secretAad("ws_2", "db"), sealed)).rejects.toBeInstanceOf(SecretBoxError);
    await expect(decryptJson(key, fleetAad("db"), sealed)).rejects.toBeInstanceOf(SecretBoxError);
  });

  it("refuses a different key, a flipped bit, truncation and garbage", async () => {
    const sealed = await encryptJson(key, "aad", { P: "x" });
    await expect(decryptJson(otherKey, "aad", sealed)).rejects.toBeInstanceOf(SecretBoxError);
    const raw = Uint8Array.from(atob(sealed), (ch) => ch.charCodeAt(0));
    raw[14]! ^= 1;
    await expect(decryptJson(key, "aad", btoa(String.fromCharCode(...raw)))).rejects.toBeInstanceOf(SecretBoxError);
    await expect(decryptJson(key, "aad", sealed.slice(0, 20))).rejects.toBeInstanceOf(SecretBoxError);
    await expect(decryptJson(key, "aad", "not base64 !!")).rejects.toBeInstanceOf(SecretBoxError);
  });

  it("never puts plaintext in its error", async () => {
    const sealed = await encryptJson(key, "aad", { P: "super-secret-value" });
    const error = await decryptJson(key, "other", sealed).catch((e: Error) => e);
    expect(String(error)).not.toContain("super-secret-value");
    expect(String((error as Error).stack)).not.toContain("super-secret-value");
  });

  it("answers 503 with instructions when KILN_SECRET_KEY is missing or malformed", async () => {
    for (const bad of [{}, { KILN_SECRET_KEY: "" }, { KILN_SECRET_KEY: btoa("short") }, { KILN_SECRET_KEY: "%%%" }]) {
      const error = await encryptJson(bad, "aad", {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).status).toBe(503);
      expect((error as ApiError).message).toContain("wrangler secret put KILN_SECRET_KEY");
    }
  });
});
