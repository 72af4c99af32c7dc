/**
 * How a Build object reads one runner event, pure: whether it belongs to the current attempt
 * (fencing), and what it means for the state machine and the build's layers. The object
 * applies the answer; nothing here touches storage. What a runner claims is believed only
 * with the registry's word (`checks`, from `report-verify.ts`): a layer result is recorded
 * only once checked, a refused one fails the attempt, and a failure caused by a missing image
 * is reported as what it is.
 */

import { FAILURE_LOG_TAIL_LINES, type RunnerEvent } from "@kiln-build/protocol";
import { isAttemptLive, type MachineEvent, type MachineState } from "./build-machine.ts";
import { allReported, type BuildPush, type PushResult, targetPosition } from "./build-push.ts";
import type { AttemptRow, FailureDetails, LayerRow } from "./build-store.ts";
import { pinnedReference } from "./job.ts";
import { diagnosisMessage, type FailureDiagnosis, type LayerCheck, type LayerRecipe } from "./report-checks.ts";

/** A stored log-tail line is cut to this many characters (the protocol allows 4,096; the tail is a preview, the log has the rest). */
export const FAILURE_LOG_LINE_CHARS = 2000;

/** Why an event was refused. `stale_attempt`: not the current attempt (or fencing token), or no attempt is out. */
export type EventRefusal = "stale_attempt" | "unknown_layer" | "unknown_push_target";

/** The build's push and the targets the current attempt has reported (by position). */
export type PushProgress = { push: BuildPush | null; reported: ReadonlySet<number> };

/** What the registry said about the event (see `report-verify.ts`); absent: not checked yet. */
export type ReportChecks = { layer?: LayerCheck; failure?: FailureDiagnosis | null };

/** A layer result as reported. */
export type LayerResultPlan = { index: number; key: string; digest: string; reference: string; sizeBytes: number };

/** A cached layer found gone: its key and reference, and how to rebuild it (null: it is not, the build fails). */
export type MissingLayerPlan = { key: string; reference: string; recipe: LayerRecipe | "own" | null };

/** What an accepted event asks the object to do. */
export type EventPlan = {
  machine: MachineEvent;
  /** A layer the runner finished, checked against the registry: record it, write it to D1, release its key. */
  built?: LayerResultPlan;
  /** A layer result still to be checked against the registry (then plan again with its `LayerCheck`). */
  verify?: LayerResultPlan;
  /** Why a layer result was refused (the attempt fails with it). */
  refused?: string;
  /** A cached layer the job stood on is gone from the registry (its cache entry was invalidated). */
  missingLayer?: MissingLayerPlan;
  /**
   * What a `failed` event reported, kept with the failure: the layer it names (memoised as
   * failed when the build ends), a build step's exit code and the last lines of output.
   */
  failure?: FailureDetails;
  /** A push target's result: record it and write it to D1. */
  pushed?: { position: number; result: PushResult };
};

/**
 * Checks `event` against the current attempt and plans its effect. `targetOf(key)` is where
 * the layer was told to push; the stored reference is pinned to the reported digest. A layer
 * result is planned as `built` only with a `checks.layer` for that layer and digest (else as
 * `verify`); a failed event is read with `checks.failure`.
 */
export function planRunnerEvent(
  machine: MachineState,
  attempt: AttemptRow | null,
  layers: readonly LayerRow[],
  event: RunnerEvent,
  targetOf: (key: string) => string,
  checks: ReportChecks = {},
  progress: PushProgress = { push: null, reported: new Set() },
): { ok: true; plan: EventPlan } | { ok: false; error: EventRefusal } {
  if (!attempt || !isAttemptLive(machine.status) || attempt.attemptNo !== machine.attemptNo) return { ok: false, error: "stale_attempt" };
  if (event.attemptId !== attempt.attemptId || event.fencingToken !== attempt.attemptNo) return { ok: false, error: "stale_attempt" };
  switch (event.type) {
    case "accepted":
    case "started":
    case "heartbeat":
    case "log":
    case "logs":
    case "phases":
      return { ok: true, plan: { machine: { type: "runner_alive" } } };
    case "layer_succeeded": {
      const layer = layers.find((l) => l.key === event.layerKey);
      if (!layer || (layer.state !== "claimed" && layer.state !== "built")) return { ok: false, error: "unknown_layer" };
      if (layer.state === "built") return { ok: true, plan: { machine: { type: "runner_alive" } } };
      const reference = pinnedReference(targetOf(layer.key), event.digest);
      const result = { index: layer.index, key: layer.key, digest: event.digest, reference, sizeBytes: event.sizeBytes };
      const check = checks.layer;
      if (check?.key !== layer.key || check.digest !== event.digest)
        return { ok: true, plan: { machine: { type: "runner_alive" }, verify: result } };
      if (check.problem === null) return { ok: true, plan: { machine: { type: "runner_alive" }, built: result } };
      // Nothing of it is kept: the attempt fails (infra, retried) with why.
      const failure = { layer: layer.key, exitCode: null, logTail: [] };
      return {
        ok: true,
        plan: { machine: { type: "runner_failed", reason: "infra", message: check.problem }, failure, refused: check.problem },
      };
    }
    case "push_result": {
      const position = targetPosition(progress.push, event.reference);
      if (position < 0) return { ok: false, error: "unknown_push_target" };
      const { reference, status, digest, message } = event;
      return {
        ok: true,
        plan: { machine: { type: "runner_alive" }, pushed: { position, result: { reference, status, digest, message } } },
      };
    }
    case "succeeded": {
      // Complete: every layer built and every push target reported (a failed push is a result, not an incomplete job).
      const complete = layers.every((l) => l.state !== "claimed") && allReported(progress.push, progress.reported);
      return { ok: true, plan: { machine: { type: "runner_succeeded", complete } } };
    }
    case "failed":
      return { ok: true, plan: planFailure(layers, event, checks.failure ?? null) };
  }
}

/**
 * A `failed` event's plan. A base image that does not exist is the user's failure (`build`, never
 * retried); a cached layer gone from the registry is rebuilt (once), or, when it cannot be, fails
 * the build at once so a new submission rebuilds it; one the registry holds but the runner could
 * not pull is an infrastructure failure (retried); anything else as the runner reported it.
 */
function planFailure(
  layers: readonly LayerRow[],
  event: Extract<RunnerEvent, { type: "failed" }>,
  diagnosis: FailureDiagnosis | null,
): EventPlan {
  const named =
    event.layerKey !== null && layers.some((l) => l.key === event.layerKey && l.state === "claimed") ? event.layerKey : undefined;
  const firstUnbuilt = layers.find((l) => l.state === "claimed")?.key;
  const reason = diagnosis?.kind === "base_missing" ? "build" : diagnosis?.kind === "pull_failed" ? "infra" : event.reason;
  const logTail = event.logTail.slice(-FAILURE_LOG_TAIL_LINES).map(capLine);
  if (diagnosis?.kind === "cached_layer_missing") {
    const { layer, recipe, again } = diagnosis;
    const rebuild = recipe !== null && !again;
    const missingLayer = { key: layer.key, reference: layer.reference, recipe: rebuild ? recipe : null };
    const failure: FailureDetails = { layer: null, exitCode: null, logTail };
    if (!rebuild) return { machine: { type: "unrecoverable", message: diagnosisMessage.resubmit(layer) }, failure, missingLayer };
    return { machine: { type: "runner_failed", reason: "infra", message: diagnosisMessage.rebuilding(layer) }, failure, missingLayer };
  }
  let message = event.exitCode === null ? event.message : `${event.message} (exit code ${event.exitCode})`;
  if (diagnosis?.kind === "base_missing") message = diagnosisMessage.baseMissing(diagnosis.reference, diagnosis.answer);
  const failure: FailureDetails = {
    // A failed step is in the first layer not built yet; another failure names a layer only if the runner did.
    layer: reason === "cancelled" ? null : (named ?? (reason === "build" ? (firstUnbuilt ?? null) : null)),
    // Only a step's exit code is the build's (workers/images/view.ts shows it as such); another one stays in the message.
    exitCode: event.reason === "build" ? event.exitCode : null,
    logTail,
  };
  return { machine: { type: "runner_failed", reason, message }, failure };
}

/** A line cut to `FAILURE_LOG_LINE_CHARS`, ending in "…" when cut (never between the halves of a surrogate pair). */
function capLine(line: string): string {
  if (line.length <= FAILURE_LOG_LINE_CHARS) return line;
  let end = FAILURE_LOG_LINE_CHARS - 1;
  const last = line.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${line.slice(0, end)}…`;
}
