// DSSE (protocol/src/attestation.ts): the pre-authentication encoding against the spec's
// example, Ed25519 signing and verification with key ids, rotation, and refusals after one
// changed byte, a wrong key or a wrong key id.
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type AttestationKeySet, ed25519Thumbprint, preAuthEncoding, signEnvelope, verifyEnvelope } from "../src/attestation.ts";

async function newKey(kid: string) {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" }) as { x: string; d: string };
  const key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d }, "Ed25519", false, ["sign"]);
  return { key, kid, public: { kty: "OKP" as const, crv: "Ed25519" as const, x: jwk.x, kid } };
}

const payload = new TextEncoder().encode('{"_type":"https://in-toto.io/Statement/v1"}');

describe("DSSE", () => {
  it("encodes the pre-authentication string as the DSSE spec's example", () => {
    const pae = preAuthEncoding("http://example.com/HelloWorld", new TextEncoder().encode("hello world"));
    expect(new TextDecoder().decode(pae)).toBe("DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  });

  it("signs deterministically and verifies with the key the keyid names", async () => {
    const a = await newKey("a");
    const envelope = await signEnvelope("application/vnd.in-toto+json", payload, a.key, "a");
    expect(envelope).toEqual(await signEnvelope("application/vnd.in-toto+json", payload, a.key, "a"));
    const verified = await verifyEnvelope(envelope, { keys: [a.public] });
    expect(verified.ok && verified.keyid).toBe("a");
    expect(verified.ok && new TextDecoder().decode(verified.payload)).toBe(new TextDecoder().decode(payload));
  });

  it("refuses a changed byte of the payload, a changed payload type, another key and a keyid the set lacks", async () => {
    const a = await newKey("a");
    const b = await newKey("b");
    const envelope = await signEnvelope("application/vnd.in-toto+json", payload, a.key, "a");
    const keys: AttestationKeySet = { keys: [a.public] };
    const bytes = Uint8Array.from(atob(envelope.payload), (c) => c.charCodeAt(0));
    bytes[5]! ^= 1;
    const flipped = { ...envelope, payload: btoa(String.fromCharCode(...bytes)) };
    expect((await verifyEnvelope(flipped, keys)).ok).toBe(false);
    expect((await verifyEnvelope({ ...envelope, payloadType: "application/json" }, keys)).ok).toBe(false);
    expect((await verifyEnvelope(envelope, { keys: [{ ...b.public, kid: "a" }] })).ok).toBe(false);
    const refused = await verifyEnvelope(envelope, { keys: [{ ...a.public, kid: "other" }] });
    expect(refused).toEqual({ ok: false, reason: "no signature verifies with the published keys (key ids in the envelope: a)" });
  });

  it("keeps verifying an old key's signatures after rotation (both keys listed)", async () => {
    const old = await newKey("old");
    const current = await newKey("new");
    const before = await signEnvelope("application/vnd.in-toto+json", payload, old.key, "old");
    const after = await signEnvelope("application/vnd.in-toto+json", payload, current.key, "new");
    const keys = { keys: [current.public, old.public] };
    expect((await verifyEnvelope(before, keys)).ok).toBe(true);
    expect((await verifyEnvelope(after, keys)).ok).toBe(true);
  });

  it("computes the RFC 7638 thumbprint (the RFC 8037 Ed25519 example)", async () => {
    expect(await ed25519Thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")).toBe("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  });
});
