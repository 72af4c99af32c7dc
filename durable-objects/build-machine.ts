/**
 * The build state machine, pure: `transition(state, event)` returns the next state and the
 * effects the Build object must carry out (claims, slots, dispatch, timers, release). The
 * object persists the new state and its effects' intent before performing any of them, so a
 * crash between the two replays the effects from storage (every effect is idempotent).
 *
 *   waiting --claims_done--> queued --slot_granted--> dispatching --dispatched/alive--> running
 *      |                       ^                          |                             |
 *      |                       +--retry_due-- retrying <--+-- refused/lost/infra -------+
 *      +--> succeeded | failed | cancelled | timeout  (terminal)
 */
import { type AttemptFailure, afterAttemptFailure, RETRY_POLICY, type RetryPolicy } from "./retry-policy.ts";

/** Every status; the last four are terminal. */
export type BuildStatus = "waiting" | "queued" | "retrying" | "dispatching" | "running" | "succeeded" | "failed" | "cancelled" | "timeout";
/** Why a build failed. `dependency`: a layer below it failed (in another build, within the memo window). */
export type FailureReason = "build" | "infra" | "timeout" | "cancelled" | "dependency";

/** The part of a build's state the machine decides on. */
export type MachineState = {
  status: BuildStatus;
  /** Attempts dispatched so far. */
  attemptNo: number;
  cancelRequested: boolean;
  failure: { reason: FailureReason; message: string } | null;
};

/** What can happen to a build. Runner events arrive here only after the attempt was checked current. */
export type MachineEvent =
  | { type: "claims_done"; layersToBuild: number; push?: boolean }
  | { type: "dependency_failed"; message: string }
  | { type: "no_fleet"; message: string }
  | { type: "unrecoverable"; message: string }
  | { type: "slot_granted" }
  | { type: "dispatched" }
  | { type: "attempt_failed"; failure: AttemptFailure; message: string }
  | { type: "runner_alive" }
  | { type: "runner_succeeded"; complete: boolean }
  | { type: "runner_failed"; reason: "build" | "infra" | "timeout" | "cancelled"; message: string }
  | { type: "deadline_passed" }
  | { type: "retry_due" }
  | { type: "cancel" }
  | { type: "cancel_timeout" };

/** What the object must do after persisting the new state. */
export type Effect =
  | { type: "claim" }
  | { type: "acquire_slot" }
  | { type: "dispatch" }
  | { type: "renew_lease" }
  | { type: "end_attempt" }
  | { type: "schedule_retry"; delayMs: number }
  | { type: "schedule_cancel_timeout" }
  | { type: "finish" };

/** A transition's result; `changed: false` means the event does not apply in this state (nothing to do). */
export type Transition = { changed: boolean; state: MachineState; effects: Effect[] };

const TERMINAL: ReadonlySet<BuildStatus> = new Set(["succeeded", "failed", "cancelled", "timeout"]);
const ATTEMPT_LIVE: ReadonlySet<BuildStatus> = new Set(["dispatching", "running"]);

/** True for succeeded, failed, cancelled and timeout. */
export function isTerminal(status: BuildStatus): boolean {
  return TERMINAL.has(status);
}

/** True while an attempt is out with a runner (its events are accepted). */
export function isAttemptLive(status: BuildStatus): boolean {
  return ATTEMPT_LIVE.has(status);
}

/** The state of a new build. */
export function initialState(): MachineState {
  return { status: "waiting", attemptNo: 0, cancelRequested: false, failure: null };
}

/** Applies `event` to `state`. Never throws; an inapplicable event returns `changed: false`. */
export function transition(state: MachineState, event: MachineEvent, policy: RetryPolicy = RETRY_POLICY): Transition {
  const same: Transition = { changed: false, state, effects: [] };
  const to = (patch: Partial<MachineState>, effects: Effect[]): Transition => ({ changed: true, state: { ...state, ...patch }, effects });
  const finish = (status: BuildStatus, failure: MachineState["failure"], endAttempt: boolean): Transition =>
    to({ status, failure }, endAttempt ? [{ type: "end_attempt" }, { type: "finish" }] : [{ type: "finish" }]);
  // An attempt that ended without a verdict on the build: retry, or fail as infra once out of attempts.
  const attemptEnded = (message: string): Transition => {
    if (state.cancelRequested) return finish("cancelled", { reason: "cancelled", message: "Cancelled on request." }, true);
    const next = afterAttemptFailure(state.attemptNo, policy);
    if (next.kind === "retry") {
      return to({ status: "retrying", failure: { reason: "infra", message } }, [
        { type: "end_attempt" },
        { type: "schedule_retry", delayMs: next.delayMs },
      ]);
    }
    return finish("failed", { reason: "infra", message: `${message} (gave up after ${state.attemptNo} attempts)` }, true);
  };

  if (isTerminal(state.status)) return same;
  const live = isAttemptLive(state.status);
  switch (event.type) {
    case "claims_done":
      if (state.status !== "waiting") return same;
      // A build with a push has a runner's work to do even when every layer was cached.
      return event.layersToBuild === 0 && !event.push
        ? finish("succeeded", null, false)
        : to({ status: "queued" }, [{ type: "acquire_slot" }]);
    case "dependency_failed":
      return state.status === "waiting" ? finish("failed", { reason: "dependency", message: event.message }, false) : same;
    case "no_fleet":
      return state.status === "queued" ? finish("failed", { reason: "infra", message: event.message }, false) : same;
    case "unrecoverable":
      // Retrying cannot help (a secret was deleted, the fleet was removed): fail now.
      return state.status === "waiting" ? same : finish("failed", { reason: "infra", message: event.message }, live);
    case "slot_granted":
      if (state.status !== "queued") return same;
      return to({ status: "dispatching", attemptNo: state.attemptNo + 1, failure: null }, [{ type: "dispatch" }]);
    case "dispatched":
      // The runner may already have reported (accepted before its 202 reached us): then it is running.
      return state.status === "dispatching" ? to({ status: "running" }, [{ type: "renew_lease" }]) : same;
    case "runner_alive":
      if (!live) return same;
      return to({ status: "running" }, [{ type: "renew_lease" }]);
    case "runner_succeeded":
      if (!live) return same;
      return event.complete ? finish("succeeded", null, true) : attemptEnded("The runner reported success without reporting every layer.");
    case "runner_failed":
      if (!live) return same;
      if (event.reason === "build") return finish("failed", { reason: "build", message: event.message }, true);
      if (event.reason === "timeout") return finish("timeout", { reason: "timeout", message: event.message }, true);
      // A runner that cancels on its own (shutting down) is an infra failure; one we asked is a cancel.
      return attemptEnded(event.reason === "cancelled" ? `The runner cancelled the job on its own: ${event.message}` : event.message);
    case "attempt_failed":
      return live ? attemptEnded(event.message) : same;
    case "deadline_passed":
      return live
        ? finish("timeout", { reason: "timeout", message: "The build passed its deadline without the runner reporting an outcome." }, true)
        : same;
    case "retry_due":
      return state.status === "retrying" ? to({ status: "queued" }, [{ type: "acquire_slot" }]) : same;
    case "cancel":
      if (live) return state.cancelRequested ? same : to({ cancelRequested: true }, [{ type: "schedule_cancel_timeout" }]);
      // Not out with a runner (waiting, queued, or between attempts): nothing to stop, cancel now.
      return finish("cancelled", { reason: "cancelled", message: "Cancelled on request." }, false);
    case "cancel_timeout":
      return live && state.cancelRequested
        ? finish("cancelled", { reason: "cancelled", message: "Cancelled on request; the runner did not confirm in time." }, true)
        : same;
  }
}
