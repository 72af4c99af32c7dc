/**
 * `verifyImage`: checks an image's signed attestations in Kiln's built-in registry (decision
 * 0024). Resolves the reference to a manifest digest, lists the image's referrers, and for
 * each DSSE attestation checks the manifest and envelope bytes against their digests, the
 * signature against the server's published keys, and that the statement's subject is the
 * image's digest. Any attestation that fails fails the whole check.
 *
 * @example
 * const result = await verifyImage("127.0.0.1:8787/acme/layers@sha256:...", { client });
 * console.log(result.provenance.buildId, result.sbom?.packages);
 */
import {
  ATTESTATION_KEYS_PATH,
  AttestationKeySetSchema,
  CYCLONEDX_PREDICATE,
  DSSE_ENVELOPE_MEDIA_TYPE,
  DsseEnvelopeSchema,
  IN_TOTO_PAYLOAD_TYPE,
  InTotoStatementSchema,
  InvalidError,
  KilnError,
  SLSA_PROVENANCE_V1,
  verifyEnvelope,
} from "@kiln-build/protocol";
import type { KilnClient } from "./client.ts";

/** Options of `verifyImage`. */
export type VerifyImageParams = { client: KilnClient };

/** An attestation check that failed: the image is not verified. */
export class VerificationError extends KilnError {}

/** What the provenance says about the build. */
export type ProvenanceSummary = {
  buildId: string;
  builder: string;
  startedOn: string;
  finishedOn: string;
  layers: { index: number; key: string; cached: boolean }[];
  baseImages: string[];
};

/** A verified image. */
export type ImageVerification = {
  repository: string;
  digest: string;
  /** Key ids of the signatures that verified. */
  keyIds: string[];
  provenance: ProvenanceSummary;
  /** Packages the SBOM lists; null when the image has no SBOM. */
  sbom: { packages: number } | null;
};

const MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/** Splits `[host/]repository(:tag|@digest)`; the host is dropped (the client names the server). */
export function parseImageRef(ref: string): { repository: string; reference: string } {
  let rest = ref;
  const first = rest.split("/")[0] ?? "";
  if (rest.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) rest = rest.slice(first.length + 1);
  const at = rest.indexOf("@");
  const colon = rest.lastIndexOf(":");
  const [repository, reference] =
    at >= 0
      ? [rest.slice(0, at), rest.slice(at + 1)]
      : colon > rest.lastIndexOf("/")
        ? [rest.slice(0, colon), rest.slice(colon + 1)]
        : [rest, "latest"];
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)+$/.test(repository) || !reference)
    throw new InvalidError(
      `"${ref}" is not an image reference of the built-in registry, e.g. <host>/<workspace>/<repository>:<tag> or ...@sha256:<digest>`,
    );
  return { repository, reference };
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${[...hash].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Fetches `/v2/<repo>/<kind>/<ref>` and checks the bytes hash to `digest` when one is given. */
async function fetchChecked(client: KilnClient, repository: string, kind: string, ref: string, digest?: string) {
  const response = await client.request("GET", ["v2", ...repository.split("/"), kind, ref], {
    registry: true,
    headers: { accept: MANIFEST_ACCEPT },
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  const actual = await sha256(bytes);
  if (digest !== undefined && actual !== digest)
    throw new VerificationError(`${kind} ${digest} of ${repository}: the content's digest is ${actual}`);
  return { bytes, digest: actual };
}

/** Verifies the attestations of image `ref`; throws `VerificationError` when any check fails. */
export async function verifyImage(ref: string, params: VerifyImageParams): Promise<ImageVerification> {
  const { repository, reference } = parseImageRef(ref);
  const { client } = params;
  const image = await fetchChecked(client, repository, "manifests", reference, reference.startsWith("sha256:") ? reference : undefined);
  const keys = AttestationKeySetSchema.parse(await client.json("GET", ATTESTATION_KEYS_PATH.slice(1).split("/")));
  const index = (await (
    await client.request("GET", ["v2", ...repository.split("/"), "referrers", image.digest], { registry: true })
  ).json()) as {
    manifests?: { digest: string; artifactType?: string }[];
  };
  const attestations = (index.manifests ?? []).filter((m) => m.artifactType === DSSE_ENVELOPE_MEDIA_TYPE);
  const keyIds = new Set<string>();
  let provenance: ProvenanceSummary | null = null;
  let sbom: { packages: number } | null = null;
  for (const entry of attestations) {
    const statement = await verifiedStatement(client, repository, entry.digest, image.digest, keys, keyIds);
    if (statement.predicateType === SLSA_PROVENANCE_V1) provenance = summarize(statement.predicate);
    if (statement.predicateType === CYCLONEDX_PREDICATE)
      sbom = { packages: ((statement.predicate as { components?: unknown[] }).components ?? []).length };
  }
  if (!provenance)
    throw new VerificationError(`${repository}@${image.digest} has no signed provenance (${attestations.length} attestation(s) found)`);
  return { repository, digest: image.digest, keyIds: [...keyIds], provenance, sbom };
}

// One attestation: manifest and envelope bytes by digest, subject, signature, statement subject.
async function verifiedStatement(
  client: KilnClient,
  repository: string,
  digest: string,
  imageDigest: string,
  keys: ReturnType<typeof AttestationKeySetSchema.parse>,
  keyIds: Set<string>,
) {
  const manifest = JSON.parse(new TextDecoder().decode((await fetchChecked(client, repository, "manifests", digest, digest)).bytes)) as {
    subject?: { digest?: string };
    layers?: { digest: string; mediaType: string }[];
  };
  if (manifest.subject?.digest !== imageDigest)
    throw new VerificationError(`attestation ${digest} names another subject (${manifest.subject?.digest})`);
  const layer = manifest.layers?.find((l) => l.mediaType === DSSE_ENVELOPE_MEDIA_TYPE);
  if (!layer) throw new VerificationError(`attestation ${digest} has no DSSE envelope layer`);
  const blob = await fetchChecked(client, repository, "blobs", layer.digest, layer.digest);
  const envelope = DsseEnvelopeSchema.safeParse(JSON.parse(new TextDecoder().decode(blob.bytes)));
  if (!envelope.success || envelope.data.payloadType !== IN_TOTO_PAYLOAD_TYPE)
    throw new VerificationError(`attestation ${digest}: not an in-toto DSSE envelope`);
  const verified = await verifyEnvelope(envelope.data, keys);
  if (!verified.ok) throw new VerificationError(`attestation ${digest}: ${verified.reason}`);
  keyIds.add(verified.keyid);
  const statement = InTotoStatementSchema.safeParse(JSON.parse(new TextDecoder().decode(verified.payload)));
  if (!statement.success) throw new VerificationError(`attestation ${digest}: the payload is not an in-toto Statement v1`);
  const hex = imageDigest.slice("sha256:".length);
  if (!statement.data.subject.some((s) => s.digest.sha256 === hex))
    throw new VerificationError(`attestation ${digest}: the statement's subject is not ${imageDigest}`);
  return statement.data;
}

function summarize(predicate: unknown): ProvenanceSummary {
  const p = predicate as {
    buildDefinition?: {
      externalParameters?: { layers?: { index: number; key: string; cached: boolean }[] };
      resolvedDependencies?: { uri: string; name?: string }[];
    };
    runDetails?: { builder?: { id?: string }; metadata?: { invocationId?: string; startedOn?: string; finishedOn?: string } };
  };
  return {
    buildId: p.runDetails?.metadata?.invocationId ?? "",
    builder: p.runDetails?.builder?.id ?? "",
    startedOn: p.runDetails?.metadata?.startedOn ?? "",
    finishedOn: p.runDetails?.metadata?.finishedOn ?? "",
    layers: (p.buildDefinition?.externalParameters?.layers ?? []).map((l) => ({ index: l.index, key: l.key, cached: l.cached })),
    baseImages: (p.buildDefinition?.resolvedDependencies ?? [])
      .filter((d) => d.name === "base-image" || d.name === "parent-layer")
      .map((d) => d.uri),
  };
}
