/**
 * The runner's `base_digests` report (decision 0024, unpinned `FROM`): the Build object keeps
 * the digests only from the job's current attempt, for layers it builds and references their
 * Dockerfile names; the provenance made at the `sbom` report records them. Called by the
 * runner-events route after the fleet's signature verified.
 */
import { BaseDigestsReportSchema } from "@kiln-build/protocol";
import { badRequest, conflict, notFound } from "../errors.ts";

const REFUSALS = {
  unknown_build: notFound("Build"),
  stale_attempt: conflict("stale_attempt", "This attempt is no longer current (retried, cancelled or finished). Stop the job."),
  unknown_layer: conflict("unknown_layer", "Base digests are kept only for layers this job builds."),
  unknown_base: conflict("unknown_base", "A reported reference is not an unpinned FROM image of that layer's Dockerfile."),
} as const;

/** Accepts a verified `base_digests` body. */
export async function acceptBaseDigests(env: Env, body: unknown): Promise<void> {
  const parsed = BaseDigestsReportSchema.safeParse(body);
  if (!parsed.success) throw badRequest("The body is not a base_digests report.", parsed.error.issues);
  const answer = await env.BUILD.getByName(parsed.data.jobId).recordBaseDigests(parsed.data);
  if (!answer.ok) throw REFUSALS[answer.error];
}
