/**
 * What a Build object tells the attestation service about the image its runner reported an
 * SBOM for (decision 0024), pure: the report must come from the current attempt, name the
 * build's top layer, and carry the digest the object recorded for it (checked against the
 * registry when the layer result was accepted). Everything the provenance records is taken
 * from the object's own state, never from the runner.
 */
import type { LayerSpec, SbomEvent } from "@kiln-build/protocol";
import type { AttestationFactsAnswer } from "../workers/attestations/facts.ts";
import type { BaseDigest } from "./base-digests.ts";
import { isAttemptLive, type MachineState } from "./build-machine.ts";
import type { AttemptRow, BuildRecord, LayerRow } from "./build-store.ts";

/** The facts for `event`, or why it is refused. `specOf(index)` reads a layer's stored spec. */
export function attestationFacts(
  rec: BuildRecord | null,
  machine: MachineState | null,
  attempt: AttemptRow | null,
  layers: readonly LayerRow[],
  event: SbomEvent,
  specOf: (index: number) => LayerSpec,
  baseDigests: BaseDigest[] = [],
): AttestationFactsAnswer {
  if (!rec || !machine) return { ok: false, error: "unknown_build" };
  if (!attempt || !isAttemptLive(machine.status) || attempt.attemptNo !== machine.attemptNo) return { ok: false, error: "stale_attempt" };
  if (event.attemptId !== attempt.attemptId || event.fencingToken !== attempt.attemptNo) return { ok: false, error: "stale_attempt" };
  const top = layers.find((l) => l.key === rec.topKey);
  // Only the image the job was asked for, once its result is recorded, and only with the recorded digest.
  if (!top || event.layerKey !== top.key || top.state !== "built" || top.digest !== event.digest || !top.reference)
    return { ok: false, error: "unknown_layer" };
  return {
    ok: true,
    facts: {
      buildId: rec.id,
      workspaceId: rec.workspaceId,
      workspaceName: rec.workspaceName,
      origin: rec.origin,
      builderVersion: rec.builderVersion,
      fleetId: attempt.fleetId,
      attemptNo: attempt.attemptNo,
      subject: { key: top.key, digest: top.digest, reference: top.reference },
      parentReference: rec.parentReference,
      layers: layers.map((l) => ({
        index: l.index,
        key: l.key,
        state: l.state,
        digest: l.digest,
        reference: l.reference,
        spec: specOf(l.index),
      })),
      createdMs: rec.createdMs,
      startedMs: attempt.dispatchedMs ?? rec.createdMs,
      baseDigests,
    },
  };
}
