/**
 * How the Build object applies a state-machine event: the new state is saved first, then each
 * effect of the transition becomes a timer (fired later by the alarm) or an outbox item
 * (delivered after the commit), so nothing outbound starts before the state asking for it is
 * persisted. Synchronous, storage only; the object wakes its log readers and commits after.
 */
import type { BuildLogs } from "./build-logs.ts";
import { type Effect, isTerminal, type MachineEvent, type MachineState, transition } from "./build-machine.ts";
import type { BuildPushStore } from "./build-push.ts";
import type { BuildRecord, BuildStore, FailureDetails } from "./build-store.ts";
import type { BuildTimeline } from "./build-timeline-store.ts";
import type { ReleaseOutcome } from "./join-policy.ts";
import { RETRY_POLICY } from "./retry-policy.ts";
import type { MissingLayerPlan } from "./runner-events.ts";
import type { Timers } from "./storage.ts";

/** The Build object's storage, as the modules that change it see it. */
export type BuildParts = { store: BuildStore; logs: BuildLogs; timers: Timers; pushes: BuildPushStore; timeline: BuildTimeline };

/** A terminal build's storage is deleted after this; D1 and the R2 log archive keep the record. */
export const RETENTION_MS = 7 * 24 * 60 * 60_000;

/**
 * Applies a machine event; false when it does not apply in the current state.
 * `details`: what the runner reported with the failure the event brings (runner_failed).
 */
export function applyMachineEvent(parts: BuildParts, event: MachineEvent, details?: FailureDetails): boolean {
  const { store } = parts;
  const rec = store.load()!;
  const t = transition(rec.machine, event, RETRY_POLICY);
  if (!t.changed) return false;
  const now = Date.now();
  store.saveMachine(t.state, now, isTerminal(t.state.status));
  if (t.state.status !== rec.machine.status) markStatus(parts, now);
  // The details belong to the failure they came with: a new attempt (failure cleared), a
  // cancel or any other failure replaces them, so an earlier attempt's layer, exit code and
  // log tail never outlive a retry. Written before the effects: `finish` memoises the layer.
  const before = rec.machine.failure;
  const after = t.state.failure;
  if (event.type === "runner_failed") store.setFailureDetails(details ?? null);
  else if (before?.reason !== after?.reason || before?.message !== after?.message) store.setFailureDetails(null);
  for (const effect of t.effects) runEffect(parts, rec, t.state, effect, now);
  // D1's row follows every change; the sync reads the state when it is delivered.
  store.enqueue("sync", {});
  return true;
}

/** Marks a layer's key released and queues the release for its LayerBuild object. */
export function releaseKey(store: BuildStore, index: number, key: string, outcome: ReleaseOutcome): void {
  store.markReleased(index);
  store.enqueue("release_key", { key, outcome });
}

/**
 * Sends a build whose attempt failed on a cached layer gone from the registry back to claiming,
 * that layer first: its own layer is reset, or the layer below its first is added (its spec, on
 * the cached image below it). Only between attempts (`retrying`: a cancel or the last attempt
 * ended the build instead); the retry's backoff is skipped, the cause being known. False when
 * it does not apply (then the attempt is retried as it is).
 */
export function rebuildMissingLayer(parts: BuildParts, missing: MissingLayerPlan, now: number): boolean {
  const { store, logs, timers } = parts;
  const rec = store.load()!;
  const layers = store.layers();
  if (rec.machine.status !== "retrying" || missing.recipe === null) return false;
  if (missing.recipe === "own") {
    const row = layers.find((l) => l.key === missing.key);
    if (!row) return false;
    store.resetLayer(row.index);
  } else {
    const { index, key, spec, parentKey, parentReference } = missing.recipe;
    if (rec.parentKey !== key || index !== layers[0]!.index - 1) return false;
    store.addLayerBelow({ index, key, spec }, parentKey, parentReference);
  }
  timers.clear("retry");
  store.saveMachine({ ...rec.machine, status: "waiting" }, now, false);
  markStatus(parts, now, `rebuilding cached layer ${missing.key.slice(0, 12)}, gone from the registry`);
  timers.set("claim", now);
  store.enqueue("sync", {});
  logs.system(
    rec.machine.attemptNo,
    `cached layer ${missing.key.slice(0, 12)} (${missing.reference}) is no longer in the registry: its cache entry was removed and the layer is rebuilt now (once)`,
    now,
  );
  return true;
}

/** Marks the status the build just entered on its timeline (with the fleet of its slot and why, where there is one). */
function markStatus({ store, timeline }: BuildParts, now: number, note?: string): void {
  const { machine, slotFleet } = store.load()!;
  const why = machine.status === "retrying" || isTerminal(machine.status) ? (machine.failure?.message ?? null) : null;
  timeline.mark({ atMs: now, kind: machine.status, attemptNo: machine.attemptNo, fleetId: slotFleet, layerKey: null, note: note ?? why });
}

// `rec`: the record before the transition; `state`: the machine after it.
function runEffect(parts: BuildParts, rec: BuildRecord, state: MachineState, effect: Effect, now: number): void {
  const { store, logs, timers } = parts;
  switch (effect.type) {
    case "claim":
      timers.set("claim", now);
      return;
    case "acquire_slot":
      timers.set("slot", now);
      return;
    case "dispatch":
      timers.set("dispatch", now);
      return;
    case "renew_lease": {
      timers.set("lease", now + RETRY_POLICY.leaseMs);
      const attempt = store.attempt(state.attemptNo);
      if (attempt && timers.get("deadline") === null) timers.set("deadline", attempt.deadlineMs + RETRY_POLICY.deadlineGraceMs);
      return;
    }
    case "end_attempt":
      endAttempt(parts, rec, now);
      return;
    case "schedule_retry":
      timers.set("retry", now + effect.delayMs);
      logs.system(
        rec.machine.attemptNo,
        `attempt ${rec.machine.attemptNo} failed (${state.failure?.message ?? "infra"}); retrying in ${effect.delayMs / 1000} s`,
        now,
      );
      return;
    case "schedule_cancel_timeout":
      timers.set("cancel", now + RETRY_POLICY.cancelGraceMs);
      return;
    case "finish":
      finish(parts, now);
      return;
  }
}

function endAttempt({ store, logs, timers }: BuildParts, rec: BuildRecord, now: number): void {
  const attempt = store.attempt(rec.machine.attemptNo);
  for (const name of ["lease", "deadline", "dispatch", "cancel"]) timers.clear(name);
  if (rec.slotFleet) store.enqueue("release_slot", { fleetId: rec.slotFleet });
  store.setField("slot_fleet", null);
  if (!attempt) return;
  store.markAttempt(attempt.attemptNo, "ended_ms", now);
  logs.closeAttempt(attempt.attemptNo, now);
  if (attempt.tokenHashes.length) store.enqueue("revoke_tokens", { hashes: attempt.tokenHashes });
}

// Gives back every slot, queue place and key the build still holds, and schedules the archive and GC.
function finish({ store, logs, timers }: BuildParts, now: number): void {
  const rec = store.load()!;
  for (const name of ["claim", "slot", "dispatch", "lease", "deadline", "retry", "cancel"]) timers.clear(name);
  for (const fleetId of store.queuedAt()) {
    store.enqueue("release_slot", { fleetId });
    store.setQueuedAt(fleetId, false);
  }
  const layers = store.layers();
  // A failure caused by a cached layer gone from the registry is not the layers' own: not memoised, so a new submission rebuilds.
  const cacheFailed = store.attemptFoundMissingLayer(rec.machine.attemptNo);
  const memoised =
    !cacheFailed && (rec.machine.status === "timeout" || (rec.machine.status === "failed" && rec.machine.failure?.reason !== "dependency"))
      ? (rec.failedLayer ?? layers.find((l) => l.state === "claimed")?.key ?? null)
      : null;
  for (const layer of layers) {
    if (layer.released) continue;
    const holds = layer.state === "claimed";
    if (holds || layer.key === rec.topKey || layer.key === rec.waitingKey) {
      releaseKey(store, layer.index, layer.key, holds && layer.key === memoised ? { kind: "failed", memo: true } : { kind: "abandoned" });
    }
  }
  const m = rec.machine;
  logs.system(m.attemptNo, `build ${m.status}${m.failure ? ` (${m.failure.reason}): ${m.failure.message}` : ""}`, now);
  store.enqueue("archive_logs", {});
  timers.set("gc", now + RETENTION_MS);
}
