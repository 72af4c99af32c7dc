/**
 * The facts a Build object vouches for about one pushed image (decision 0024, external
 * registries), as durable-objects/push-attestation-facts.ts reports them.
 */

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
