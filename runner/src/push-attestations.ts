/**
 * Attestations copied with a pushed image (decision 0024, external registries). After a
 * target's `push_result`, the runner reads back what it pushed (the manifest, or an index and
 * its platform manifests), sends their text to the orchestrator, which signs the built image's
 * SBOM and provenance for the pushed digests, and attaches each signed statement to the target
 * in the layout of the built-in registry (an artifact manifest with `subject`, `artifactType`
 * DSSE). A registry that does not answer `OCI-Subject` has no referrers API: the referrers tag
 * schema's index (`sha256-<hex>`) is updated instead (distribution-spec 1.1). Whatever happens
 * is reported (`push_attestations_result`) and logged; it never fails the job.
 */
import {
  attestationArtifact,
  OCI_IMAGE_INDEX,
  type PushAttestationsResponse,
  type PushAttestationsStatus,
  parsePushReference,
  referrersTag,
} from "@kiln-build/protocol";
import { z } from "zod";
import type { EventClient } from "./event-client.ts";
import { RegistrySession, type RegistrySessionOptions } from "./registry-client.ts";

const INDEX_TYPES = new Set([OCI_IMAGE_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"]);
const Index = z.object({ manifests: z.array(z.object({ digest: z.string() }).loose()) }).loose();
const ReferrersIndex = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: z.literal(OCI_IMAGE_INDEX).optional(),
    manifests: z.array(z.object({ digest: z.string() }).loose()),
  })
  .loose();

/** What the orchestrator side of the exchange looks like to this module (the job's event client). */
export type AttestationCalls = {
  /** Asks for the statements of `digest` pushed to `reference`; null when the orchestrator did not give any (older, or not configured). */
  request(body: { reference: string; digest: string; manifests: string[] }): Promise<PushAttestationsResponse | null>;
  /** Reports what was attached. */
  report(body: { reference: string; digest: string } & PushAttestationsStatus): Promise<void>;
};

/** The pushed manifest's text and, for an index, its platform manifests' texts (in its order), read back from the target. */
export async function pushedManifests(dst: RegistrySession, digest: string): Promise<string[]> {
  const top = await dst.manifest(digest);
  if (top.digest !== digest) throw new Error(`the target serves ${top.digest} for ${digest}`);
  const texts = [top.bytes.toString("utf8")];
  const json = JSON.parse(texts[0]!) as { mediaType?: string };
  if (!INDEX_TYPES.has(top.mediaType?.split(";")[0]?.trim() || json.mediaType || "")) return texts;
  for (const child of Index.parse(json).manifests) {
    const fetched = await dst.manifest(child.digest);
    if (fetched.digest !== child.digest) throw new Error(`the target serves ${fetched.digest} for ${child.digest}`);
    texts.push(fetched.bytes.toString("utf8"));
  }
  return texts;
}

/** Attaches `answer`'s statements to their subjects in `dst`; how they can be found (referrers API or tag). */
export async function attachStatements(
  dst: RegistrySession,
  answer: PushAttestationsResponse,
): Promise<{ count: number; via: "referrers" | "tag" | null }> {
  let count = 0;
  let via: "referrers" | "tag" | null = null;
  const createdIso = new Date().toISOString();
  for (const { subject, statements } of answer.subjects) {
    const fallback: Awaited<ReturnType<typeof attestationArtifact>>["descriptor"][] = [];
    for (const s of statements) {
      const artifact = await attestationArtifact({
        envelope: s.envelope,
        predicateType: s.predicateType,
        subject,
        createdIso,
        buildId: answer.buildId,
      });
      await dst.putBlob(Buffer.from(artifact.envelope.bytes));
      await dst.putBlob(Buffer.from(artifact.empty.bytes));
      const stored = await dst.putManifestAnswer(artifact.digest, Buffer.from(artifact.manifest), artifact.descriptor.mediaType);
      count++;
      // A registry with the referrers API says it indexed the subject; any other needs the tag schema's index.
      if (stored.headers.get("oci-subject") === subject.digest) via ??= "referrers";
      else fallback.push(artifact.descriptor);
    }
    if (fallback.length > 0) {
      await updateReferrersTag(dst, subject.digest, fallback);
      via = "tag";
    }
  }
  return { count, via };
}

/**
 * Adds `descriptors` to the referrers tag schema's index of `subject` (a 404 starts an empty
 * one; a tag holding anything else is not overwritten), without duplicates.
 */
export async function updateReferrersTag(dst: RegistrySession, subject: string, descriptors: { digest: string }[]): Promise<void> {
  const tag = referrersTag(subject);
  const current = await dst.manifestOrNull(tag);
  let manifests: { digest: string }[] = [];
  if (current) {
    const parsed = ReferrersIndex.safeParse(JSON.parse(current.bytes.toString("utf8")));
    if (!parsed.success) throw new Error(`the tag ${tag} holds something other than a referrers index; not overwritten`);
    manifests = parsed.data.manifests;
  }
  const known = new Set(manifests.map((m) => m.digest));
  const index = {
    schemaVersion: 2,
    mediaType: OCI_IMAGE_INDEX,
    manifests: [...manifests, ...descriptors.filter((d) => !known.has(d.digest))],
  };
  await dst.putManifest(tag, Buffer.from(JSON.stringify(index)), OCI_IMAGE_INDEX);
}

/** The whole exchange for one target: read back, request, attach, report. Never throws. */
export async function attestPush(
  dst: RegistrySession,
  target: { reference: string; digest: string },
  calls: AttestationCalls,
  log: (line: string) => void,
  mask: (text: string) => string,
): Promise<PushAttestationsStatus> {
  let status: PushAttestationsStatus;
  try {
    const answer = await calls.request({ ...target, manifests: await pushedManifests(dst, target.digest) });
    if (!answer) status = { status: "none", count: 0, via: null, message: "the orchestrator signed no attestations for this push" };
    else {
      const attached = await attachStatements(dst, answer);
      status =
        attached.count === 0
          ? { status: "none", count: 0, via: null, message: "the built image has no signed attestations to copy" }
          : { status: "attached", count: attached.count, via: attached.via, message: null };
    }
  } catch (error) {
    status = {
      status: "failed",
      count: 0,
      via: null,
      message: mask(error instanceof Error ? error.message : String(error)).slice(0, 4096),
    };
  }
  if (status.status === "attached")
    log(
      `attached ${status.count} attestation(s) to ${target.reference}@${target.digest} (${status.via === "tag" ? `referrers tag ${referrersTag(target.digest)}` : "referrers API"})`,
    );
  else log(`attestations of ${target.reference}: ${status.status}${status.message ? ` (${status.message})` : ""}`);
  await calls.report({ ...target, ...status }).catch((error: unknown) => log(`attestation result not reported: ${String(error)}`));
  return status;
}

/** The job's event client calls the exchange uses. */
export type AttestationEvents = Pick<EventClient, "requestPushAttestations" | "reportPushAttestations">;

/** {@link attestPush} for a job's target, through the job's event client and a session to the target. */
export async function attestTarget(
  target: { reference: string; digest: string },
  session: RegistrySessionOptions,
  events: AttestationEvents,
  giveUp: AbortSignal,
  log: (line: string) => void,
  mask: (text: string) => string,
): Promise<PushAttestationsStatus> {
  const parts = parsePushReference(target.reference);
  const name = "error" in parts ? target.reference : `${parts.host}/${parts.repository}:${parts.tag}`;
  const calls: AttestationCalls = {
    request: (body) => events.requestPushAttestations(body, giveUp),
    report: async (body) => {
      await events.reportPushAttestations(body, giveUp);
    },
  };
  return attestPush(new RegistrySession(name, session), target, calls, log, mask);
}
