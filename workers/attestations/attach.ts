/**
 * Attaching a signed statement to an image through the OCI 1.1 referrers API of the built-in
 * registry (decision 0024): the DSSE envelope is the one layer of an image manifest with
 * `artifactType` = the DSSE media type, an empty config and `subject` = the image's manifest
 * (cosign's attestation layout, with BuildKit's predicate-type annotation as well). Written
 * straight into the registry's store, into `<ws>/layers` and every repository of the workspace
 * that already holds the image (tags published before the build ended); tags published later
 * copy the referrers with the image (registry/link.ts).
 */
import {
  COSIGN_PREDICATE_TYPE_ANNOTATION,
  DSSE_ENVELOPE_MEDIA_TYPE,
  digestHex,
  digestOfBytes,
  IN_TOTO_PAYLOAD_TYPE,
  type InTotoStatement,
  PREDICATE_TYPE_ANNOTATION,
  signEnvelope,
} from "@kiln-build/protocol";
import { and, eq, like } from "drizzle-orm";
import { registryManifests } from "../db/schema/registry.ts";
import { blobKey } from "../registry/blob-writer.ts";
import { OCI_MANIFEST, parseManifest } from "../registry/manifest.ts";
import { db, findManifest, manifestObjectKey, recordBlob, storeManifest } from "../registry/store.ts";
import type { SigningKey } from "./keys.ts";

/** The OCI empty descriptor's content, media type and digest (image-spec 1.1). */
const EMPTY = { bytes: new TextEncoder().encode("{}"), mediaType: "application/vnd.oci.empty.v1+json" };

/** Where the attestation goes: the subject image and the workspace that owns it. */
export type AttachTarget = { workspaceId: string; workspaceName: string; subjectDigest: string; buildId: string; createdMs: number };

/** What was attached: the artifact manifest's digest and the repositories it was written to. */
export type Attached = { digest: string; repositories: string[] };

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const sha256 = async (bytes: Uint8Array) => digestOfBytes(await crypto.subtle.digest("SHA-256", bytes));

/** Signs `statement` and attaches it to the target image; null when `<ws>/layers` does not hold the image. */
export async function attachStatement(
  env: Env,
  target: AttachTarget,
  statement: InTotoStatement,
  signer: SigningKey,
): Promise<Attached | null> {
  const d = db(env);
  const home = `${target.workspaceName}/layers`;
  const subject = await findManifest(d, home, target.subjectDigest);
  if (!subject) return null;
  const envelope = json(await signEnvelope(IN_TOTO_PAYLOAD_TYPE, json(statement), signer.key, signer.kid));
  const envelopeDigest = await sha256(envelope);
  const emptyDigest = await sha256(EMPTY.bytes);
  const predicate = { [PREDICATE_TYPE_ANNOTATION]: statement.predicateType, [COSIGN_PREDICATE_TYPE_ANNOTATION]: statement.predicateType };
  const manifest = json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: DSSE_ENVELOPE_MEDIA_TYPE,
    config: { mediaType: EMPTY.mediaType, digest: emptyDigest, size: EMPTY.bytes.byteLength },
    layers: [{ mediaType: DSSE_ENVELOPE_MEDIA_TYPE, digest: envelopeDigest, size: envelope.byteLength, annotations: predicate }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.sizeBytes },
    annotations: {
      ...predicate,
      "org.opencontainers.image.created": new Date(target.createdMs).toISOString(),
      "build.kiln.build-id": target.buildId,
    },
  });
  const parsed = parseManifest(manifest, OCI_MANIFEST);
  if (!parsed.ok) throw new Error(`attestation manifest does not parse: ${parsed.message}`);
  const digest = await sha256(manifest);
  await env.REGISTRY.put(blobKey(envelopeDigest), envelope, { sha256: digestHex(envelopeDigest) });
  await env.REGISTRY.put(blobKey(emptyDigest), EMPTY.bytes, { sha256: digestHex(emptyDigest) });
  await env.REGISTRY.put(manifestObjectKey(digest), manifest, { sha256: digestHex(digest), httpMetadata: { contentType: OCI_MANIFEST } });
  const holders = await d
    .select({ repository: registryManifests.repository })
    .from(registryManifests)
    .where(and(eq(registryManifests.digest, target.subjectDigest), like(registryManifests.repository, `${target.workspaceName}/%`)))
    .all();
  const repositories = [...new Set([home, ...holders.map((h) => h.repository)])];
  const now = Date.now();
  for (const repo of repositories) {
    await recordBlob(d, repo, target.workspaceId, envelopeDigest, envelope.byteLength, blobKey(envelopeDigest), now);
    await recordBlob(d, repo, target.workspaceId, emptyDigest, EMPTY.bytes.byteLength, blobKey(emptyDigest), now);
    await storeManifest(d, repo, target.workspaceId, digest, manifest.byteLength, parsed.manifest, null, now);
  }
  return { digest, repositories };
}
