/**
 * What a Build object vouches for when its runner asks for the attestations of a pushed image
 * (decision 0024, external registries), pure: the request must come from the current attempt,
 * name a push target of this build, and carry the digest that attempt reported for that target
 * in a succeeded `push_result`. The source image is what the job copied as the Build object
 * knows it (its own top layer, or the multi-platform index its push names), never anything the
 * runner names, so a runner can only get statements about a digest it pushed for its own job,
 * linked to the image Kiln built.
 */
import type { PushAttestationFacts, PushAttestationFactsAnswer } from "../workers/attestations/facts.ts";
import { isAttemptLive, type MachineState } from "./build-machine.ts";
import { type BuildPush, targetPosition } from "./build-push.ts";
import type { AttemptRow, BuildRecord, LayerRow } from "./build-store.ts";

/** A target's recorded result, with the attempt that reported it. */
export type RecordedPushResult = { attemptNo: number; status: string; digest: string | null };

/** The request's identity: its attempt, target and the digest it asks about. */
export type PushAttestationAsk = { attemptId: string; fencingToken: number; reference: string; digest: string };

/** The facts for `ask`, or why it is refused. `resultOf(position)` reads a target's recorded result. */
export function pushAttestationFacts(
  rec: BuildRecord | null,
  machine: MachineState | null,
  attempt: AttemptRow | null,
  layers: readonly LayerRow[],
  push: BuildPush | null,
  resultOf: (position: number) => RecordedPushResult | null,
  ask: PushAttestationAsk,
): PushAttestationFactsAnswer {
  if (!rec || !machine) return { ok: false, error: "unknown_build" };
  if (!attempt || !isAttemptLive(machine.status) || attempt.attemptNo !== machine.attemptNo) return { ok: false, error: "stale_attempt" };
  if (ask.attemptId !== attempt.attemptId || ask.fencingToken !== attempt.attemptNo) return { ok: false, error: "stale_attempt" };
  const position = targetPosition(push, ask.reference);
  if (!push || position < 0) return { ok: false, error: "unknown_push_target" };
  const result = resultOf(position);
  // Only the digest this attempt reported for this target, and only when its push succeeded.
  if (!result || result.attemptNo !== attempt.attemptNo || result.status !== "succeeded" || result.digest !== ask.digest)
    return { ok: false, error: "unknown_push_digest" };
  const source = pushSource(rec, layers, push);
  if (!source) return { ok: false, error: "unknown_push_digest" };
  const facts: PushAttestationFacts = {
    buildId: rec.id,
    workspaceId: rec.workspaceId,
    workspaceName: rec.workspaceName,
    imageId: push.imageId,
    position,
    reference: ask.reference,
    pushedDigest: ask.digest,
    source,
  };
  return { ok: true, facts };
}

// The image the job copied: a multi-platform push names its index (pinned by digest); any other push copies the top layer.
function pushSource(rec: BuildRecord, layers: readonly LayerRow[], push: BuildPush): { digest: string; reference: string } | null {
  if (push.source) {
    const digest = push.source.slice(push.source.lastIndexOf("@") + 1);
    return digest.startsWith("sha256:") ? { digest, reference: push.source } : null;
  }
  const top = layers.find((l) => l.key === rec.topKey);
  return top?.digest && top.reference ? { digest: top.digest, reference: top.reference } : null;
}
