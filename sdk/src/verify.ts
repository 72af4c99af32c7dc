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
import { builtInReader, externalReader, type RegistryLogin, type RegistryReader } from "./registry-reader.ts";

/** Options of `verifyImage`. */
export type VerifyImageParams = {
  /** The Kiln server whose published keys must have signed the attestations (and the built-in registry). */
  client: KilnClient;
  /** For an external registry: its login (default: from the environment or an auth file, else anonymous; `registryLoginFor`). */
  registryLogin?: RegistryLogin | null;
  /** For an external registry: plain http instead of https. */
  insecure?: boolean;
  /** For an external registry: the fetch to use (default: global fetch). */
  fetch?: typeof fetch;
};

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
  /** For a pushed copy: the image Kiln built that it was copied from (`docker://…@sha256:…`). */
  builtImage: string | null;
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
  /** For a multi-platform image: each platform's image, verified on its own (the fields above are the first's). */
  platforms?: PlatformVerification[];
};

/** One platform of a verified multi-platform image. */
export type PlatformVerification = {
  platform: string;
  digest: string;
  keyIds: string[];
  provenance: ProvenanceSummary;
  sbom: { packages: number } | null;
};

/** Splits `[host/]repository(:tag|@digest)`; `host` is null when the reference names none. */
export function parseImageRef(ref: string): { host: string | null; repository: string; reference: string } {
  let rest = ref;
  const first = rest.split("/")[0] ?? "";
  const hasHost = rest.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  if (hasHost) rest = rest.slice(first.length + 1);
  const at = rest.indexOf("@");
  const colon = rest.lastIndexOf(":");
  const [repository, reference] =
    at >= 0
      ? [rest.slice(0, at), rest.slice(at + 1)]
      : colon > rest.lastIndexOf("/")
        ? [rest.slice(0, colon), rest.slice(colon + 1)]
        : [rest, "latest"];
  // A built-in repository is `<workspace>/<name>`; an external registry's may have one component.
  const components = repository.split("/");
  const valid = components.every((c) => /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/.test(c)) && components.length >= (hasHost ? 1 : 2);
  if (!valid || !reference)
    throw new InvalidError(
      `"${ref}" is not an image reference, e.g. <host>/<workspace>/<repository>:<tag> or <registry>/<repository>@sha256:<digest>`,
    );
  return { host: hasHost ? first : null, repository, reference };
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${[...hash].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Reads a manifest or blob and checks its bytes hash to `digest` when one is given. */
async function fetchChecked(reader: RegistryReader, kind: "manifests" | "blobs", ref: string, digest?: string) {
  const bytes = kind === "manifests" ? await reader.manifest(ref) : await reader.blob(ref);
  const actual = await sha256(bytes);
  if (digest !== undefined && actual !== digest)
    throw new VerificationError(`${kind} ${digest} of ${reader.name}: the content's digest is ${actual}`);
  return { bytes, digest: actual };
}

/**
 * The registry `ref` is in: the built-in one when it names no host or the Kiln server's, else
 * the external registry it names (where `build({ push })` copied the image).
 */
export function readerFor(ref: string, params: VerifyImageParams): RegistryReader {
  const { host, repository } = parseImageRef(ref);
  if (host === null || host === new URL(params.client.serverUrl).host) return builtInReader(params.client, repository);
  return externalReader(host, repository, {
    ...(params.registryLogin !== undefined ? { login: params.registryLogin } : {}),
    ...(params.fetch ? { fetch: params.fetch } : {}),
    ...(params.insecure ? { insecure: true } : {}),
  });
}

/**
 * Verifies the attestations of image `ref`; throws `VerificationError` when any check fails. A
 * multi-platform image (an OCI index) is verified platform by platform: every platform's
 * manifest must carry its own verified provenance; the answer's `provenance` and `sbom` are the
 * first platform's and `platforms` lists each.
 */
export async function verifyImage(ref: string, params: VerifyImageParams): Promise<ImageVerification> {
  const { reference } = parseImageRef(ref);
  const reader = readerFor(ref, params);
  const image = await fetchChecked(reader, "manifests", reference, reference.startsWith("sha256:") ? reference : undefined);
  const keys = AttestationKeySetSchema.parse(await params.client.json("GET", ATTESTATION_KEYS_PATH.slice(1).split("/")));
  const entries = indexEntries(image.bytes);
  if (entries === null) return { repository: reader.name, digest: image.digest, ...(await verifyManifest(reader, image.digest, keys)) };
  if (entries.length === 0) throw new VerificationError(`${reader.name}@${image.digest} is an index without platform images`);
  const platforms: PlatformVerification[] = [];
  for (const entry of entries) {
    // Each entry's bytes must hash to the digest the (already checked) index names.
    await fetchChecked(reader, "manifests", entry.digest, entry.digest);
    platforms.push({ platform: entry.platform, digest: entry.digest, ...(await verifyManifest(reader, entry.digest, keys)) });
  }
  const first = platforms[0]!;
  const keyIds = [...new Set(platforms.flatMap((p) => p.keyIds))];
  return { repository: reader.name, digest: image.digest, keyIds, provenance: first.provenance, sbom: first.sbom, platforms };
}

/** The platform images an index lists (attestation entries, platform `unknown/unknown`, left out), or null when not an index. */
function indexEntries(bytes: Uint8Array): { platform: string; digest: string }[] | null {
  const parsed = JSON.parse(new TextDecoder().decode(bytes)) as {
    manifests?: { digest?: unknown; platform?: { os?: string; architecture?: string; variant?: string } }[];
  };
  if (!Array.isArray(parsed.manifests)) return null;
  return parsed.manifests.flatMap((m) => {
    const p = m.platform;
    if (typeof m.digest !== "string" || !p?.os || !p.architecture || p.os === "unknown") return [];
    return [{ platform: [p.os, p.architecture, p.variant].filter(Boolean).join("/"), digest: m.digest }];
  });
}

// One image manifest's attestations: every DSSE referrer verified, a provenance required.
async function verifyManifest(reader: RegistryReader, digest: string, keys: ReturnType<typeof AttestationKeySetSchema.parse>) {
  const index = await reader.referrers(digest);
  const attestations = (index.manifests ?? []).filter((m) => m.artifactType === DSSE_ENVELOPE_MEDIA_TYPE);
  const keyIds = new Set<string>();
  let provenance: ProvenanceSummary | null = null;
  let sbom: { packages: number } | null = null;
  for (const entry of attestations) {
    const statement = await verifiedStatement(reader, entry.digest, digest, keys, keyIds);
    if (statement.predicateType === SLSA_PROVENANCE_V1) provenance = summarize(statement.predicate);
    if (statement.predicateType === CYCLONEDX_PREDICATE)
      sbom = { packages: ((statement.predicate as { components?: unknown[] }).components ?? []).length };
  }
  if (!provenance)
    throw new VerificationError(`${reader.name}@${digest} has no signed provenance (${attestations.length} attestation(s) found)`);
  return { keyIds: [...keyIds], provenance, sbom };
}

// One attestation: manifest and envelope bytes by digest, subject, signature, statement subject.
async function verifiedStatement(
  reader: RegistryReader,
  digest: string,
  imageDigest: string,
  keys: ReturnType<typeof AttestationKeySetSchema.parse>,
  keyIds: Set<string>,
) {
  const manifest = JSON.parse(new TextDecoder().decode((await fetchChecked(reader, "manifests", digest, digest)).bytes)) as {
    subject?: { digest?: string };
    layers?: { digest: string; mediaType: string }[];
  };
  if (manifest.subject?.digest !== imageDigest)
    throw new VerificationError(`attestation ${digest} names another subject (${manifest.subject?.digest})`);
  const layer = manifest.layers?.find((l) => l.mediaType === DSSE_ENVELOPE_MEDIA_TYPE);
  if (!layer) throw new VerificationError(`attestation ${digest} has no DSSE envelope layer`);
  const blob = await fetchChecked(reader, "blobs", layer.digest, layer.digest);
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
      resolvedDependencies?: { uri: string; name?: string; digest?: { sha256?: string } }[];
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
      .map((d) => d.uri + (d.name === "base-image" && d.digest?.sha256 && !d.uri.includes("@") ? `@sha256:${d.digest.sha256}` : "")),
    builtImage: (p.buildDefinition?.resolvedDependencies ?? []).find((d) => d.name === "kiln-built-image")?.uri ?? null,
  };
}
