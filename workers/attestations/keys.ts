/**
 * The attestation signing keys (decision 0024): the Worker secret `KILN_ATTESTATION_KEY` holds
 * an Ed25519 private JWK, or a JWKS (as JSON or base64 of it) whose first private key signs and whose other entries
 * (private or public only) are still published, so a rotated-out key keeps verifying what it
 * signed. Key ids default to the RFC 7638 thumbprint. The runner never sees any of it.
 */
import { type AttestationKeySet, ed25519Thumbprint } from "@kiln-build/protocol";
import { z } from "zod";
import { ApiError } from "../errors.ts";

/** The key that signs, with its id. */
export type SigningKey = { key: CryptoKey; kid: string };

const Jwk = z.object({
  kty: z.literal("OKP"),
  crv: z.literal("Ed25519"),
  x: z.string().min(1),
  d: z.string().min(1).optional(),
  kid: z.string().min(1).optional(),
});
const KeySecret = z.union([Jwk, z.object({ keys: z.array(Jwk).min(1) })]);

/** The parsed secret: the signing key and the published key set. */
export type AttestationKeys = { signing: SigningKey; published: AttestationKeySet };

const SETUP = "Set it with `wrangler secret put KILN_ATTESTATION_KEY` to an Ed25519 private JWK (docs/attestations.md).";

// Parsed once per isolate and secret value: importing keys on every request costs nothing useful.
let cached: { text: string; keys: Promise<AttestationKeys> } | null = null;

/** The keys of `env`, or 503 with how to set them. */
export function attestationKeys(env: { KILN_ATTESTATION_KEY?: string }): Promise<AttestationKeys> {
  const text = env.KILN_ATTESTATION_KEY;
  if (!text) return Promise.reject(new ApiError(503, "attestation_key_missing", `KILN_ATTESTATION_KEY is not set. ${SETUP}`));
  if (cached?.text !== text) cached = { text, keys: parseKeys(text) };
  return cached.keys;
}

async function parseKeys(text: string): Promise<AttestationKeys> {
  let json: unknown = null;
  try {
    // JSON as is, or base64 of it (what fits a dotenv line or a `--var` flag).
    json = JSON.parse(text.trimStart().startsWith("{") ? text : atob(text.trim()));
  } catch {
    // Reported below without the value.
  }
  const parsed = KeySecret.safeParse(json);
  // The message never echoes the value: it is a private key.
  if (!parsed.success) throw new ApiError(503, "attestation_key_invalid", `KILN_ATTESTATION_KEY is not an Ed25519 JWK or JWKS. ${SETUP}`);
  const jwks = "keys" in parsed.data ? parsed.data.keys : [parsed.data];
  const published = await Promise.all(
    jwks.map(async (k) => ({
      kty: "OKP" as const,
      crv: "Ed25519" as const,
      x: k.x,
      kid: k.kid ?? (await ed25519Thumbprint(k.x)),
      alg: "EdDSA" as const,
      use: "sig" as const,
    })),
  );
  const index = jwks.findIndex((k) => k.d !== undefined);
  if (index < 0) throw new ApiError(503, "attestation_key_invalid", `KILN_ATTESTATION_KEY lists no private key. ${SETUP}`);
  const signer = jwks[index]!;
  const key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: signer.x, d: signer.d }, "Ed25519", false, ["sign"]);
  return { signing: { key, kid: published[index]!.kid }, published: { keys: published } };
}
