/**
 * Attaching a signed statement to an image through the OCI 1.1 referrers API of the built-in
 * registry (decision 0024): the DSSE envelope is the one layer of an image manifest with
 * `artifactType` = the DSSE media type, an empty config and `subject` = the image's manifest
 * (cosign's attestation layout, with BuildKit's predicate-type annotation as well). Written
 * straight into the registry's store, into `<ws>/layers` and every repository of the workspace
 * that already holds the image (tags published before the build ended); tags published later
 * copy the referrers with the image (registry/link.ts).
 */
import { attestationArtifact, digestHex, IN_TOTO_PAYLOAD_TYPE, type InTotoStatement, signEnvelope } from "@kiln-build/protocol";
import { and, eq, like } from "drizzle-orm";
import { registryManifests } from "../db/schema/registry.ts";
import { blobKey } from "../registry/blob-writer.ts";
import { OCI_MANIFEST, parseManifest } from "../registry/manifest.ts";
import { db, findManifest, manifestObjectKey, recordBlob, storeManifest } from "../registry/store.ts";
import type { SigningKey } from "./keys.ts";

/** Where the attestation goes: the subject image and the workspace that owns it. */
export type AttachTarget = { workspaceId: string; workspaceName: string; subjectDigest: string; buildId: string; createdMs: number };

/** What was attached: the artifact manifest's digest and the repositories it was written to. */
export type Attached = { digest: string; repositories: string[] };

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

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
  const envelope = await signEnvelope(IN_TOTO_PAYLOAD_TYPE, json(statement), signer.key, signer.kid);
  const artifact = await attestationArtifact({
    envelope,
    predicateType: statement.predicateType,
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.sizeBytes },
    createdIso: new Date(target.createdMs).toISOString(),
    buildId: target.buildId,
  });
  const { manifest, digest } = artifact;
  const envelopeDigest = artifact.envelope.digest;
  const emptyDigest = artifact.empty.digest;
  const parsed = parseManifest(manifest, OCI_MANIFEST);
  if (!parsed.ok) throw new Error(`attestation manifest does not parse: ${parsed.message}`);
  // The bytes first (at once), then the rows that make them visible.
  await Promise.all([
    env.REGISTRY.put(blobKey(envelopeDigest), artifact.envelope.bytes, { sha256: digestHex(envelopeDigest) }),
    env.REGISTRY.put(blobKey(emptyDigest), artifact.empty.bytes, { sha256: digestHex(emptyDigest) }),
    env.REGISTRY.put(manifestObjectKey(digest), manifest, { sha256: digestHex(digest), httpMetadata: { contentType: OCI_MANIFEST } }),
  ]);
  const holders = await d
    .select({ repository: registryManifests.repository })
    .from(registryManifests)
    .where(and(eq(registryManifests.digest, target.subjectDigest), like(registryManifests.repository, `${target.workspaceName}/%`)))
    .all();
  const repositories = [...new Set([home, ...holders.map((h) => h.repository)])];
  const now = Date.now();
  for (const repo of repositories) {
    await recordBlob(d, repo, target.workspaceId, envelopeDigest, artifact.envelope.bytes.byteLength, blobKey(envelopeDigest), now);
    await recordBlob(d, repo, target.workspaceId, emptyDigest, artifact.empty.bytes.byteLength, blobKey(emptyDigest), now);
    await storeManifest(d, repo, target.workspaceId, digest, manifest.byteLength, parsed.manifest, null, now);
  }
  return { digest, repositories };
}
