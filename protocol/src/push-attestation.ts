/**
 * Attestations of pushed images (decision 0024, amendment for external registries): the
 * runner's `push_attestations` request (after a target's `push_result`, it asks the
 * orchestrator to sign the image's SBOM and provenance for the digest the target holds), the
 * answer with the signed envelopes, the runner's `push_attestations_result` report of what it
 * attached, and the OCI artifact layout both the Worker and the runner write (cosign's
 * attestation layout on the OCI 1.1 referrers API, with the referrers tag schema fallback).
 * Pure module: no Node-only API.
 */
import { z } from "zod";
import {
  COSIGN_PREDICATE_TYPE_ANNOTATION,
  DSSE_ENVELOPE_MEDIA_TYPE,
  DsseEnvelopeSchema,
  PREDICATE_TYPE_ANNOTATION,
} from "./attestation.ts";
import { digestOfBytes, Sha256Digest } from "./digest.ts";

/** Longest manifest (or index) text a runner sends with a `push_attestations` request. */
export const MAX_PUSHED_MANIFEST_CHARS = 1024 * 1024;
/** Most manifests one request carries: the pushed manifest, or an index and its platform manifests. */
export const MAX_PUSHED_MANIFESTS = 17;

// push.ts's MAX_PUSH_REFERENCE_CHARS, spelled here: push.ts imports this module's status schema.
const Reference = z.string().min(1).max(512);

const Routing = {
  jobId: z.string().min(1).max(128),
  attemptId: z.string().min(1).max(128),
  fencingToken: z.number().int().nonnegative(),
};

/**
 * The runner asks for the attestations of what it pushed to `reference` (already reported in a
 * `push_result` with `digest`). `manifests[0]` is the text of the pushed manifest (or index)
 * whose sha256 is `digest`; for an index, the texts of its platform manifests follow in its
 * order. The orchestrator hashes them itself: it signs only for digests it derives from the
 * reported one.
 */
export const PushAttestationsRequestSchema = z
  .object({
    type: z.literal("push_attestations"),
    ...Routing,
    reference: Reference,
    digest: Sha256Digest,
    manifests: z.array(z.string().min(2).max(MAX_PUSHED_MANIFEST_CHARS)).min(1).max(MAX_PUSHED_MANIFESTS),
  })
  .strict();
/** The runner's `push_attestations` request. */
export type PushAttestationsRequest = z.infer<typeof PushAttestationsRequestSchema>;

/** One signed statement for a pushed manifest: its predicate type and the DSSE envelope. */
export const SignedStatementSchema = z.object({ predicateType: z.string().min(1), envelope: DsseEnvelopeSchema }).strict();

/** The statements of one pushed manifest (the subject descriptor the artifacts point at). */
export const PushedSubjectAttestationsSchema = z
  .object({
    subject: z.object({ mediaType: z.string().min(1), digest: Sha256Digest, size: z.number().int().nonnegative() }).strict(),
    statements: z.array(SignedStatementSchema),
  })
  .strict();

/** The orchestrator's answer to `push_attestations`: what to attach, per pushed manifest. */
export const PushAttestationsResponseSchema = z
  .object({
    ok: z.literal(true),
    cancel: z.boolean(),
    buildId: z.string().min(1),
    subjects: z.array(PushedSubjectAttestationsSchema),
  })
  .strict();
/** The answer to `push_attestations`. */
export type PushAttestationsResponse = z.infer<typeof PushAttestationsResponseSchema>;

/** How a target's attestations ended, as the runner reports them and the API shows them. */
export const PushAttestationsStatusSchema = z
  .object({
    status: z.enum(["attached", "none", "failed"]),
    /** Artifact manifests attached. */
    count: z.number().int().nonnegative(),
    /** How they are found: the registry's referrers API, or the referrers tag schema (`sha256-<hex>`). */
    via: z.enum(["referrers", "tag"]).nullable(),
    message: z.string().max(4096).nullable(),
  })
  .strict();
/** A target's attestation outcome. */
export type PushAttestationsStatus = z.infer<typeof PushAttestationsStatusSchema>;

/** The runner's report of what it attached to a target (after `push_attestations`). */
export const PushAttestationsResultSchema = z
  .object({
    type: z.literal("push_attestations_result"),
    ...Routing,
    reference: Reference,
    digest: Sha256Digest,
    ...PushAttestationsStatusSchema.shape,
  })
  .strict();
/** The runner's `push_attestations_result` report. */
export type PushAttestationsResult = z.infer<typeof PushAttestationsResultSchema>;

/** The OCI empty descriptor's content and media type (image-spec 1.1). */
export const OCI_EMPTY = { text: "{}", mediaType: "application/vnd.oci.empty.v1+json" } as const;
/** Media type of an OCI image manifest. */
export const OCI_IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** Media type of an OCI image index. */
export const OCI_IMAGE_INDEX = "application/vnd.oci.image.index.v1+json";

/** A subject's descriptor (what an attestation's `subject` names). */
export type SubjectDescriptor = { mediaType: string; digest: string; size: number };

/** An attestation artifact: the manifest bytes and digest, and the two blobs it names. */
export type AttestationArtifact = {
  manifest: Uint8Array<ArrayBuffer>;
  digest: string;
  envelope: { bytes: Uint8Array<ArrayBuffer>; digest: string };
  empty: { bytes: Uint8Array<ArrayBuffer>; digest: string };
  /** The descriptor a referrers list holds for it (artifactType and the manifest's annotations). */
  descriptor: { mediaType: string; digest: string; size: number; artifactType: string; annotations: Record<string, string> };
};

const encode = (text: string) => new Uint8Array(new TextEncoder().encode(text));
const sha256 = async (bytes: Uint8Array<ArrayBuffer>) => digestOfBytes(await crypto.subtle.digest("SHA-256", bytes));

/**
 * The artifact manifest of one signed statement: `artifactType` and the one layer are the DSSE
 * media type, the config is the empty descriptor, `subject` the image, and the predicate type
 * is annotated under cosign's and BuildKit's keys (the layout decision 0024 chose).
 */
export async function attestationArtifact(input: {
  envelope: unknown;
  predicateType: string;
  subject: SubjectDescriptor;
  createdIso: string;
  buildId: string;
}): Promise<AttestationArtifact> {
  const envelope = encode(JSON.stringify(input.envelope));
  const empty = encode(OCI_EMPTY.text);
  const envelopeDigest = await sha256(envelope);
  const emptyDigest = await sha256(empty);
  const predicate = { [PREDICATE_TYPE_ANNOTATION]: input.predicateType, [COSIGN_PREDICATE_TYPE_ANNOTATION]: input.predicateType };
  const annotations = { ...predicate, "org.opencontainers.image.created": input.createdIso, "build.kiln.build-id": input.buildId };
  const manifest = encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_IMAGE_MANIFEST,
      artifactType: DSSE_ENVELOPE_MEDIA_TYPE,
      config: { mediaType: OCI_EMPTY.mediaType, digest: emptyDigest, size: empty.byteLength },
      layers: [{ mediaType: DSSE_ENVELOPE_MEDIA_TYPE, digest: envelopeDigest, size: envelope.byteLength, annotations: predicate }],
      subject: { mediaType: input.subject.mediaType, digest: input.subject.digest, size: input.subject.size },
      annotations,
    }),
  );
  const digest = await sha256(manifest);
  return {
    manifest,
    digest,
    envelope: { bytes: envelope, digest: envelopeDigest },
    empty: { bytes: empty, digest: emptyDigest },
    descriptor: { mediaType: OCI_IMAGE_MANIFEST, digest, size: manifest.byteLength, artifactType: DSSE_ENVELOPE_MEDIA_TYPE, annotations },
  };
}

/**
 * The referrers tag of a digest (distribution-spec 1.1 "Referrers Tag Schema"): the algorithm
 * truncated to 32 characters, `-`, the encoded part truncated to 64, characters a tag cannot
 * hold replaced by `-`. `sha256:ab…` -> `sha256-ab…`.
 */
export function referrersTag(digest: string): string {
  const colon = digest.indexOf(":");
  const tag = `${digest.slice(0, colon).slice(0, 32)}-${digest.slice(colon + 1).slice(0, 64)}`;
  return tag.replace(/[^\w.-]/g, "-");
}
