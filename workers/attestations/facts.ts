/**
 * The facts of a build that its provenance is made from (decision 0024), as the Build object
 * reports them (durable-objects/attestation-facts.ts), and those of a pushed copy of its image
 * (durable-objects/push-attestation-facts.ts).
 */
import type { LayerSpec } from "@kiln-build/protocol";

/** One layer of the build as the provenance records it. */
export type AttestedLayer = { index: number; key: string; state: string; digest: string | null; reference: string | null; spec: LayerSpec };

/** The facts of a build the provenance is made from. */
export type AttestationFacts = {
  buildId: string;
  workspaceId: string;
  workspaceName: string;
  origin: string;
  builderVersion: string;
  fleetId: string;
  attemptNo: number;
  /** The image: the top layer's key, manifest digest and pinned reference. */
  subject: { key: string; digest: string; reference: string };
  parentReference: string | null;
  layers: AttestedLayer[];
  createdMs: number;
  startedMs: number;
  /** Digests the job's runner resolved for unpinned `FROM` images, by layer key and reference (decision 0024). */
  baseDigests?: { layerKey: string; reference: string; digest: string }[];
};

/** Why the Build object refuses a report. */
export type AttestationRefusal = "unknown_build" | "stale_attempt" | "unknown_layer";

/** The Build object's answer to a report (tagged: RPC drops error properties). */
export type AttestationFactsAnswer = { ok: true; facts: AttestationFacts } | { ok: false; error: AttestationRefusal };

/** A pushed image the orchestrator may sign for: the target, the digest it holds and the built image it is a copy of. */
export type PushAttestationFacts = {
  buildId: string;
  workspaceId: string;
  workspaceName: string;
  /** The image whose push this is (`image_pushes.image_id`) and the target's position. */
  imageId: string;
  position: number;
  /** The target as the submission named it. */
  reference: string;
  /** The digest the runner reported for the target (`push_result`). */
  pushedDigest: string;
  /** The image the job copied: the build's top layer in the built-in registry. */
  source: { digest: string; reference: string };
};

/** Why a Build object refuses a push attestation request. */
export type PushAttestationRefusal = "unknown_build" | "stale_attempt" | "unknown_push_target" | "unknown_push_digest";

/** The Build object's answer (tagged: RPC drops error properties). */
export type PushAttestationFactsAnswer = { ok: true; facts: PushAttestationFacts } | { ok: false; error: PushAttestationRefusal };
