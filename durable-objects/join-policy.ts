/**
 * Who builds a layer key, pure. Each (workspace, layer key) has one LayerBuild object holding
 * a `KeyState`; these functions decide, for a submission whose top layer is that key, whether
 * it joins a build, gets the cached or memoised-failed result, or needs a new build; and, for
 * a build walking its chain bottom-up, whether it may build the key now.
 *
 * Rules (issue 3): identical submissions join one build; `forceBuild` never joins a build
 * that started before it (it may coalesce with a forced build that has not started yet);
 * normal submissions may join a forced build; `ignoreCache` builds are private (never joined
 * by others, never cached); a failure is memoised for a short window only; a key is never
 * built by two builds at once (the holder).
 */

import type { BuildMode } from "../workers/images/build-mode.ts";

export type { BuildMode };

/** A build that ends with this key and has not ended. `freshFrom`: chain index from which it rebuilds regardless of the cache. */
export type PendingBuild = { buildId: string; mode: BuildMode; freshFrom: number };

/** What a LayerBuild object knows about its key. */
export type KeyState = {
  /** The build currently building this key, if any. It started: it claimed the key just before dispatch. */
  holder: { buildId: string; mode: BuildMode } | null;
  /** Builds created for submissions whose top layer is this key, oldest first. */
  pending: readonly PendingBuild[];
  /** The cached result (normal and forced builds only). */
  success: { buildId: string; digest: string; reference: string; sizeBytes: number } | null;
  /** The memoised failure and when it stops counting. */
  failure: { buildId: string; untilMs: number } | null;
};

/** A submission whose top layer is this key. `freshFrom` is the chain length when nothing is forced. */
export type SubmitRequest = { mode: BuildMode; freshFrom: number; chainLength: number };

/** What a submission gets. */
export type SubmitDecision =
  | { kind: "cached"; buildId: string }
  | { kind: "join"; buildId: string }
  | { kind: "failed"; buildId: string }
  | { kind: "create" };

/** Decides a submission. `nowMs` only matters for the failure memo. */
export function decideSubmit(state: KeyState, request: SubmitRequest, nowMs: number): SubmitDecision {
  const started = (buildId: string) => state.holder?.buildId === buildId;
  if (request.mode === "ignore") {
    const twin = state.pending.find((p) => p.mode === "ignore" && !started(p.buildId));
    return twin ? { kind: "join", buildId: twin.buildId } : { kind: "create" };
  }
  if (request.mode === "force") {
    // Only a forced build that has not started and rebuilds at least as much may absorb this one.
    const twin = state.pending.find((p) => p.mode === "force" && p.freshFrom <= request.freshFrom && !started(p.buildId));
    return twin ? { kind: "join", buildId: twin.buildId } : { kind: "create" };
  }
  if (state.success) return { kind: "cached", buildId: state.success.buildId };
  if (state.holder && state.holder.mode !== "ignore") return { kind: "join", buildId: state.holder.buildId };
  const shared = state.pending.find((p) => p.mode !== "ignore");
  if (shared) return { kind: "join", buildId: shared.buildId };
  if (state.failure && state.failure.untilMs > nowMs) return { kind: "failed", buildId: state.failure.buildId };
  return { kind: "create" };
}

/** A build asking to build this key. `fresh`: it must rebuild even if cached (forced, ignoring the cache, or above a layer it rebuilds). */
export type ClaimRequest = { buildId: string; mode: BuildMode; fresh: boolean };

/** The answer to a claim. `busy`: another build holds the key; the claimant is told when it is released. */
export type ClaimDecision =
  | { kind: "claimed" }
  | { kind: "cached"; digest: string; reference: string; sizeBytes: number; buildId: string }
  | { kind: "failed"; buildId: string }
  | { kind: "busy"; holder: string };

/** Decides a claim (idempotent: the holder claiming again is told `claimed`). */
export function decideClaim(state: KeyState, claim: ClaimRequest, nowMs: number): ClaimDecision {
  if (state.holder?.buildId === claim.buildId) return { kind: "claimed" };
  if (!claim.fresh && state.success) return { kind: "cached", ...state.success };
  if (!claim.fresh && state.failure && state.failure.untilMs > nowMs) return { kind: "failed", buildId: state.failure.buildId };
  if (state.holder) return { kind: "busy", holder: state.holder.buildId };
  return { kind: "claimed" };
}

/** How a build lets go of a key. */
export type ReleaseOutcome =
  | { kind: "succeeded"; digest: string; reference: string; sizeBytes: number }
  | { kind: "failed"; memo: boolean }
  | { kind: "abandoned" };

/** The key's state after `buildId` releases it (and leaves its pending list); `notifyWaiters` when the key became free. */
export function applyRelease(
  state: KeyState,
  buildId: string,
  mode: BuildMode,
  outcome: ReleaseOutcome,
  nowMs: number,
  failureMemoMs: number,
): { state: KeyState; notifyWaiters: boolean } {
  const wasHolder = state.holder?.buildId === buildId;
  let { success, failure } = state;
  if (wasHolder && outcome.kind === "succeeded" && mode !== "ignore") {
    // Normal builds only reach here when the key was not cached; forced builds replace.
    success = { buildId, digest: outcome.digest, reference: outcome.reference, sizeBytes: outcome.sizeBytes };
    failure = null;
  }
  if (wasHolder && outcome.kind === "failed" && outcome.memo) failure = { buildId, untilMs: nowMs + failureMemoMs };
  return {
    state: { holder: wasHolder ? null : state.holder, pending: state.pending.filter((p) => p.buildId !== buildId), success, failure },
    notifyWaiters: wasHolder,
  };
}
