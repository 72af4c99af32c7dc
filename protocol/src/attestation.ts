/**
 * Signed attestations (decision 0024): the DSSE envelope, the in-toto Statement it carries,
 * the OCI artifact layout Kiln attaches them with, and the runner's `sbom` report. Signing
 * and verification use Web Crypto only (Ed25519 JWKs), so the Worker signs and the SDK
 * verifies with the same code.
 */
import { z } from "zod";
import { LayerKey, Sha256Digest } from "./digest.ts";

/** DSSE payloadType of an in-toto Statement. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
/** in-toto Statement v1 `_type`. */
export const IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1";
/** SLSA provenance v1 predicate type. */
export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";
/** CycloneDX predicate type (as cosign and BuildKit name it). */
export const CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom";
/** Media type of a DSSE envelope: the artifact manifest's `artifactType` and its one layer (cosign's attestation layout). */
export const DSSE_ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json";
/** Annotation naming the predicate type, on the manifest and its layer (BuildKit's key). */
export const PREDICATE_TYPE_ANNOTATION = "in-toto.io/predicate-type";
/** The same, under cosign's key (cosign filters `download attestation` on it). */
export const COSIGN_PREDICATE_TYPE_ANNOTATION = "predicateType";
/** Path of the JWKS that lists the public attestation keys. */
export const ATTESTATION_KEYS_PATH = "/.well-known/kiln/attestation-keys";
/** Largest SBOM document a runner sends (characters of its JSON). */
export const MAX_SBOM_CHARS = 4 * 1024 * 1024;

/** A DSSE envelope (https://github.com/secure-systems-lab/dsse). */
export const DsseEnvelopeSchema = z.object({
  payloadType: z.string().min(1),
  payload: z.string(),
  signatures: z.array(z.object({ keyid: z.string().optional(), sig: z.string().min(1) })).min(1),
});
/** A DSSE envelope. */
export type DsseEnvelope = z.infer<typeof DsseEnvelopeSchema>;

/** An in-toto Statement v1 (subject digests as `{ sha256: hex }`). */
export const InTotoStatementSchema = z.object({
  _type: z.literal(IN_TOTO_STATEMENT_V1),
  subject: z.array(z.object({ name: z.string(), digest: z.record(z.string(), z.string()) })).min(1),
  predicateType: z.string().min(1),
  predicate: z.unknown(),
});
/** An in-toto Statement v1. */
export type InTotoStatement = z.infer<typeof InTotoStatementSchema>;

/** An Ed25519 public key as a JWK with its key id. */
export const AttestationPublicKeySchema = z.object({
  kty: z.literal("OKP"),
  crv: z.literal("Ed25519"),
  x: z.string().min(1),
  kid: z.string().min(1),
  alg: z.literal("EdDSA").optional(),
  use: z.literal("sig").optional(),
});
/** The JWKS served at `ATTESTATION_KEYS_PATH`. */
export const AttestationKeySetSchema = z.object({ keys: z.array(AttestationPublicKeySchema) });
/** The JWKS served at `ATTESTATION_KEYS_PATH`. */
export type AttestationKeySet = z.infer<typeof AttestationKeySetSchema>;

/**
 * The runner's report of the image a job built (sent to `/v1/runner/events` after the top
 * layer's `layer_succeeded`, before `succeeded`): its SBOM (CycloneDX 1.6 JSON text, null when
 * the runner could not read the image, with `sbomError` saying why). The orchestrator checks the
 * digest against the layer it recorded, then signs and attaches the SBOM and the provenance.
 */
export const SbomEventSchema = z
  .object({
    type: z.literal("sbom"),
    jobId: z.string().min(1).max(128),
    attemptId: z.string().min(1).max(128),
    fencingToken: z.number().int().nonnegative(),
    layerKey: LayerKey,
    /** The manifest digest the SBOM describes (the layer's reported digest). */
    digest: Sha256Digest,
    sbom: z.string().max(MAX_SBOM_CHARS).nullable(),
    sbomError: z.string().max(4096).optional(),
  })
  .strict();
/** The runner's `sbom` report. */
export type SbomEvent = z.infer<typeof SbomEventSchema>;

/**
 * The runner's report of the base images it pulled and the digests it got (sent before the
 * `sbom` report): for `FROM` images the Dockerfile did not pin, the provenance records the
 * digest the job's runner resolved. The orchestrator keeps only entries of layers this build
 * builds and references their Dockerfile names in a `FROM` line.
 */
export const BaseDigestsReportSchema = z
  .object({
    type: z.literal("base_digests"),
    jobId: z.string().min(1).max(128),
    attemptId: z.string().min(1).max(128),
    fencingToken: z.number().int().nonnegative(),
    bases: z
      .array(z.object({ layerKey: LayerKey, reference: z.string().min(1).max(512), digest: Sha256Digest }).strict())
      .min(1)
      .max(64),
  })
  .strict();
/** The runner's `base_digests` report. */
export type BaseDigestsReport = z.infer<typeof BaseDigestsReportSchema>;

const encoder = new TextEncoder();

/** A Web Crypto key (spelled through `crypto.subtle` so the module needs no DOM types). */
export type SigningCryptoKey = Parameters<typeof crypto.subtle.sign>[1];

/** DSSE pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`. */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const type = encoder.encode(payloadType);
  const head = encoder.encode(`DSSEv1 ${type.byteLength} ${payloadType} ${payload.byteLength} `);
  const out = new Uint8Array(head.byteLength + payload.byteLength);
  out.set(head, 0);
  out.set(payload, head.byteLength);
  return out;
}

/** Standard base64 of bytes (DSSE's JSON encoding). */
export function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** Bytes of standard or URL-safe base64; null when it is not base64. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> | null {
  try {
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Signs `payload` into a DSSE envelope with an Ed25519 private key (deterministic: same input, same envelope). */
export async function signEnvelope(payloadType: string, payload: Uint8Array, key: SigningCryptoKey, keyid: string): Promise<DsseEnvelope> {
  const sig = new Uint8Array(await crypto.subtle.sign("Ed25519", key, preAuthEncoding(payloadType, payload)));
  return { payloadType, payload: toBase64(payload), signatures: [{ keyid, sig: toBase64(sig) }] };
}

/** How an envelope verified: the key that signed it and the payload bytes, or why not. */
export type EnvelopeVerification = { ok: true; keyid: string; payload: Uint8Array } | { ok: false; reason: string };

/** Verifies an envelope against a key set: some signature must verify with the key its keyid names (or, without keyid, any key). */
export async function verifyEnvelope(envelope: DsseEnvelope, keys: AttestationKeySet): Promise<EnvelopeVerification> {
  const payload = fromBase64(envelope.payload);
  if (!payload) return { ok: false, reason: "the payload is not base64" };
  const message = preAuthEncoding(envelope.payloadType, payload);
  for (const signature of envelope.signatures) {
    const sig = fromBase64(signature.sig);
    if (!sig) continue;
    const candidates = keys.keys.filter((k) => signature.keyid === undefined || k.kid === signature.keyid);
    for (const jwk of candidates) {
      const key = await crypto.subtle.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, "Ed25519", false, ["verify"]);
      if (await crypto.subtle.verify("Ed25519", key, sig, message)) return { ok: true, keyid: jwk.kid, payload };
    }
  }
  const named = envelope.signatures.map((s) => s.keyid ?? "(none)").join(", ");
  return { ok: false, reason: `no signature verifies with the published keys (key ids in the envelope: ${named})` };
}

/** The RFC 7638 thumbprint of an Ed25519 public key, base64url: Kiln's default key id. */
export async function ed25519Thumbprint(x: string): Promise<string> {
  const canonical = `{"crv":"Ed25519","kty":"OKP","x":"${x}"}`;
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(canonical)));
  return toBase64(hash).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
