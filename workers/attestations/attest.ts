/**
 * The runner's `sbom` report, accepted (decision 0024): the Build object vouches for the
 * attempt and the image digest, then the Worker makes the SLSA provenance from the object's
 * facts, wraps the runner's CycloneDX document in an in-toto Statement about the same digest,
 * signs both with its own key and attaches them to the image. Called by the runner-events
 * route after the fleet's signature verified; the answer is the route's.
 */
import { CYCLONEDX_PREDICATE, IN_TOTO_STATEMENT_V1, type InTotoStatement, SbomEventSchema } from "@kiln-build/protocol";
import { z } from "zod";
import { ApiError, badRequest, conflict, notFound } from "../errors.ts";
import { type Attached, attachStatement } from "./attach.ts";
import type { AttestationFacts, AttestationFactsAnswer } from "./facts.ts";
import { attestationKeys } from "./keys.ts";
import { provenanceStatement, subjectOf } from "./provenance.ts";

/** The shape of a CycloneDX document Kiln accepts from a runner: what a verifier reads, the rest passed through. */
export const CycloneDxSchema = z
  .object({
    bomFormat: z.literal("CycloneDX"),
    specVersion: z.string(),
    components: z.array(z.object({ type: z.string(), name: z.string(), version: z.string().optional() }).passthrough()).max(100_000),
  })
  .passthrough();

/** What was attached for one report. */
export type AttestResult = { provenance: Attached; sbom: Attached | null };

const REFUSALS = {
  unknown_build: notFound("Build"),
  stale_attempt: conflict("stale_attempt", "This attempt is no longer current (retried, cancelled or finished). Stop the job."),
  unknown_layer: conflict(
    "unknown_layer",
    "The SBOM must name the job's top layer, after its result was accepted, with the digest reported for it.",
  ),
} as const;

/** Accepts a verified `sbom` body: validates it, checks it with the build, signs and attaches. */
export async function acceptSbomReport(env: Env, body: unknown): Promise<AttestResult> {
  const parsed = SbomEventSchema.safeParse(body);
  if (!parsed.success) throw badRequest("The body is not an sbom report.", parsed.error.issues);
  const event = parsed.data;
  let bom: unknown = null;
  if (event.sbom !== null) {
    const doc = CycloneDxSchema.safeParse(safeJson(event.sbom));
    if (!doc.success) throw badRequest("The sbom is not a CycloneDX JSON document.", doc.error.issues);
    bom = doc.data;
  }
  // Rpc.Serializable cannot express the layer spec's recursive zod types: the object returns exactly this.
  // Not configured is no reason for the runner to retry: 422 ends its delivery, and the build log says so.
  await attestationKeys(env).catch((error: unknown) => {
    throw error instanceof ApiError && error.status === 503 ? new ApiError(422, error.code, error.message) : error;
  });
  const answer = (await env.BUILD.getByName(event.jobId).attestationFacts(event)) as unknown as AttestationFactsAnswer;
  if (!answer.ok) throw REFUSALS[answer.error];
  return attest(env, answer.facts, bom);
}

/** Signs and attaches the provenance of `facts`, and the SBOM `bom` when there is one. */
export async function attest(env: Env, facts: AttestationFacts, bom: unknown): Promise<AttestResult> {
  const { signing } = await attestationKeys(env);
  const target = {
    workspaceId: facts.workspaceId,
    workspaceName: facts.workspaceName,
    subjectDigest: facts.subject.digest,
    buildId: facts.buildId,
    createdMs: Date.now(),
  };
  const sbomStatement: InTotoStatement | null =
    bom === null ? null : { _type: IN_TOTO_STATEMENT_V1, subject: subjectOf(facts), predicateType: CYCLONEDX_PREDICATE, predicate: bom };
  // Independent artifacts (each its own manifest and envelope blob), attached at once: the runner's `succeeded` waits for this.
  const [provenance, sbom] = await Promise.all([
    attachStatement(env, target, await provenanceStatement(facts, target.createdMs), signing),
    sbomStatement && attachStatement(env, target, sbomStatement, signing),
  ]);
  // The object checked the digest against the registry when it accepted the layer; gone since means it was deleted.
  if (!provenance) throw new ApiError(409, "unknown_layer", "The registry no longer holds the image.");
  return { provenance, sbom: sbom ?? null };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
