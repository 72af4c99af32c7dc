/**
 * `Build`: one Durable Object per build (= dispatched job, named by its id). It claims its
 * layers bottom-up from their LayerBuild objects (waiting when another build holds one),
 * takes a slot from a fleet's FleetScheduler, dispatches signed attempts, accepts the
 * runner's events (fenced by attempt), keeps the live log, retries lost or refused attempts
 * and, at the end, releases everything and archives the log. Decisions come from
 * `build-machine.ts`; every outbound step runs from the one alarm (timers table) or the
 * outbox, after the state that asks for it was persisted, and re-checks state afterwards.
 *
 * @example
 * await env.BUILD.getByName(buildId).runnerEvent(webhookId, event);
 */
import { DurableObject } from "cloudflare:workers";
import type { RunnerEvent } from "@kiln-build/protocol";
import { log } from "../workers/log.ts";
import { BuildLogs, type LogChunk } from "./build-logs.ts";
import { isTerminal, type MachineEvent, transition } from "./build-machine.ts";
import { deliverOutboxItem } from "./build-outbox.ts";
import type { BuildSpec } from "./build-spec.ts";
import { runDispatch, runSlotAcquisition, type StepContext } from "./build-steps.ts";
import { BUILD_MIGRATIONS, type BuildRecord, BuildStore, type FailureDetails, type LayerRow } from "./build-store.ts";
import { targetReference } from "./job.ts";
import type { ReleaseOutcome } from "./join-policy.ts";
import { layerBuildName } from "./layer-build.ts";
import { RETRY_POLICY } from "./retry-policy.ts";
import { planRunnerEvent } from "./runner-events.ts";
import { migrate, Timers } from "./storage.ts";

/** The answer to a runner event. */
export type RunnerEventResult =
  | { ok: true; cancel: boolean }
  | { ok: false; error: { code: "unknown_build" | "stale_attempt" | "duplicate_event" | "unknown_layer" | "log_gap_too_large" } };

/** A page of log for a reader: `archived` when the object no longer holds it (read R2 instead). */
export type LogPage =
  | { ok: true; chunks: LogChunk[]; lastPos: number; done: boolean; status: string; archived: string | null }
  | { ok: false; error: { code: "unknown_build" } };

/** Everything the object holds, for tests and diagnostics. */
export type BuildSnapshot = {
  build: BuildRecord;
  layers: LayerRow[];
  attempts: ReturnType<BuildStore["attempts"]>;
  timers: Record<string, number>;
  outbox: number;
};

// A terminal build's storage is deleted after this; D1 and the R2 log archive keep the record.
const RETENTION_MS = 7 * 24 * 60 * 60_000;
// Safety nets: re-check a claim or a fleet queue even if the wake-up call was lost.
const RECLAIM_MS = 60_000;
// Event ids are kept for twice the ±5 minute tolerance: an older replay is refused by its timestamp.
const SEEN_RETENTION_MS = 10 * 60_000;
const MAX_OUTBOX_BACKOFF_MS = 60_000;

/** One build's lifecycle. */
export class Build extends DurableObject<Env> {
  readonly #store: BuildStore;
  readonly #logs: BuildLogs;
  readonly #timers: Timers;
  #work: Promise<void> = Promise.resolve();
  #flushing: Promise<void> = Promise.resolve();
  readonly #logWaiters = new Set<() => void>();
  /** Woken after each outbox delivery (waitForEnd answers once D1 has the outcome). */
  readonly #flushWaiters = new Set<() => void>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new BuildStore(ctx.storage.sql);
    this.#logs = new BuildLogs(ctx.storage.sql);
    this.#timers = new Timers(ctx.storage);
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage.sql, BUILD_MIGRATIONS));
  }

  /** Creates the build (idempotent) and starts claiming its layers; its D1 row exists when this returns. */
  async create(spec: BuildSpec): Promise<{ ok: true }> {
    if (this.#store.init(spec, Date.now())) {
      this.#logs.system(0, `build ${spec.buildId} created for ${spec.layers.length} layer(s), mode ${spec.mode}`, Date.now());
      this.#timers.set("claim", Date.now());
      this.#store.enqueue("sync", {});
    }
    await this.#commit();
    return { ok: true };
  }

  /** Runs every timer already due, then returns the snapshot (the alarm does the same; tests await it). */
  async settle(): Promise<BuildSnapshot | null> {
    await this.#runDue();
    return this.snapshot();
  }

  /** The object's state, or null when it holds no build. */
  async snapshot(): Promise<BuildSnapshot | null> {
    const build = this.#store.load();
    if (!build) return null;
    const timers = Object.fromEntries(
      this.ctx.storage.sql
        .exec<{ name: string; due_ms: number }>("SELECT name, due_ms FROM timers")
        .toArray()
        .map((t) => [t.name, t.due_ms]),
    );
    return { build, layers: this.#store.layers(), attempts: this.#store.attempts(), timers, outbox: this.#store.outbox().length };
  }

  /** A verified runner event (the route checked its signature): fenced, deduplicated by `webhookId`, applied. */
  async runnerEvent(webhookId: string, event: RunnerEvent): Promise<RunnerEventResult> {
    const rec = this.#store.load();
    if (!rec) return { ok: false, error: { code: "unknown_build" } };
    // A replay first: an event applied before is "delivered", even if its attempt has ended since.
    if (this.#store.wasSeen(webhookId)) return { ok: false, error: { code: "duplicate_event" } };
    const attempt = this.#store.attempt(rec.machine.attemptNo);
    const planned = planRunnerEvent(rec.machine, attempt, this.#store.layers(), event, (key) => this.#target(rec, key));
    if (!planned.ok) return { ok: false, error: { code: planned.error } };
    const now = Date.now();
    const chunk = event.type === "log" ? { seq: event.seq, entries: [event] } : event.type === "logs" ? event : null;
    if (chunk && this.#logs.append(rec.machine.attemptNo, chunk, now) === "overflow")
      return { ok: false, error: { code: "log_gap_too_large" } };
    this.#store.markSeen(webhookId, now);
    const { plan } = planned;
    if (plan.built) {
      const { index, ...result } = plan.built;
      this.#store.setLayer(index, "built", result);
      this.#store.enqueue("layer_result", result);
      this.#releaseKey(index, result.key, {
        kind: "succeeded",
        digest: result.digest,
        reference: result.reference,
        sizeBytes: result.sizeBytes,
      });
      this.#logs.system(rec.machine.attemptNo, `layer ${result.key.slice(0, 12)} built: ${result.digest}`, now);
    }
    if (event.type === "failed")
      this.#logs.system(rec.machine.attemptNo, `runner reported failure (${event.reason}): ${event.message}`, now);
    this.#apply(plan.machine, plan.failure);
    await this.#commit();
    return { ok: true, cancel: this.#store.load()!.machine.cancelRequested };
  }

  /** Cancels the build: at once if no runner has it, else on the runner's next event (and after a grace period regardless). */
  async cancel(): Promise<{ ok: true; status: string } | { ok: false; error: { code: "unknown_build" } }> {
    if (!this.#store.load()) return { ok: false, error: { code: "unknown_build" } };
    if (this.#apply({ type: "cancel" })) this.#logs.system(this.#store.load()!.machine.attemptNo, "cancel requested", Date.now());
    await this.#commit();
    return { ok: true, status: this.#store.load()!.machine.status };
  }

  /** A LayerBuild object tells a waiting build that the key it waited for was released. */
  async keyReleased(key: string): Promise<{ ok: true }> {
    const rec = this.#store.load();
    if (rec && rec.machine.status === "waiting" && (rec.waitingKey === null || rec.waitingKey === key)) {
      this.#timers.set("claim", Date.now());
      await this.#timers.arm();
    }
    return { ok: true };
  }

  /** A FleetScheduler offers a slot; accepted only while the build is queued without one. */
  async slotGranted(fleetId: string): Promise<{ accepted: boolean }> {
    const rec = this.#store.load();
    if (rec?.machine.status !== "queued" || rec.slotFleet !== null) return { accepted: false };
    this.#takeSlot(fleetId);
    await this.#commit();
    return { accepted: true };
  }

  /** Log chunks after `cursor`; waits up to `waitMs` for new ones while the build runs (long-poll). */
  async readLogs(cursor: number, options: { maxChunks: number; maxBytes: number; waitMs: number }): Promise<LogPage> {
    let rec = this.#store.load();
    if (!rec) return { ok: false, error: { code: "unknown_build" } };
    let chunks = this.#logs.read(cursor, options.maxChunks, options.maxBytes);
    if (chunks.length === 0 && !isTerminal(rec.machine.status) && options.waitMs > 0) {
      await this.#nextChange(this.#logWaiters, options.waitMs);
      rec = this.#store.load()!;
      chunks = this.#logs.read(cursor, options.maxChunks, options.maxBytes);
    }
    const lastPos = this.#logs.lastPos();
    const seen = chunks.at(-1)?.pos ?? cursor;
    const archived = rec.logArchive !== null && lastPos === 0 ? rec.logArchive : null;
    return {
      ok: true,
      chunks,
      lastPos,
      done: isTerminal(rec.machine.status) && seen >= lastPos && archived === null,
      status: rec.machine.status,
      archived,
    };
  }

  /**
   * Resolves once the build has ended (and its D1 record says so) or `waitMs` passed: a
   * long-poll for clients that wait for the outcome without following the log.
   */
  async waitForEnd(waitMs: number): Promise<{ ended: boolean }> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const rec = this.#store.load();
      if (!rec) return { ended: false };
      // Ended for the caller once the outbox has told D1, which is what the API reads.
      if (isTerminal(rec.machine.status) && this.#store.outbox().length === 0) return { ended: true };
      const left = deadline - Date.now();
      if (left <= 0) return { ended: false };
      await this.#nextChange(this.#flushWaiters, left);
    }
  }

  /** Runs due timers (at-least-once; every step is idempotent). */
  override async alarm(): Promise<void> {
    await this.#runDue();
  }

  #takeSlot(fleetId: string): void {
    this.#store.setField("slot_fleet", fleetId);
    this.#store.setQueuedAt(fleetId, false);
    for (const other of this.#store.queuedAt()) {
      this.#store.enqueue("release_slot", { fleetId: other });
      this.#store.setQueuedAt(other, false);
    }
    this.#apply({ type: "slot_granted" });
  }

  #steps(): StepContext {
    return {
      env: this.env,
      store: this.#store,
      logs: this.#logs,
      timers: this.#timers,
      apply: (e) => this.#apply(e),
      takeSlot: (f) => this.#takeSlot(f),
    };
  }

  #runDue(): Promise<void> {
    const run = this.#work.then(async () => {
      for (let round = 0; round < 16; round++) {
        const due = this.#timers.due(Date.now());
        if (due.length === 0) break;
        for (const name of due) {
          this.#timers.clear(name);
          try {
            await this.#fire(name);
          } catch (error) {
            log("error", "build timer failed; retrying", {
              object: "Build",
              buildId: this.#store.load()?.id,
              timer: name,
              error: String((error as Error)?.stack ?? error),
            });
            this.#timers.set(name, Date.now() + 10_000);
          }
        }
      }
      await this.#commit();
    });
    this.#work = run.catch(() => undefined);
    return run;
  }

  async #fire(name: string): Promise<void> {
    const rec = this.#store.load();
    if (!rec) return;
    const status = rec.machine.status;
    switch (name) {
      case "claim":
        if (status === "waiting") await this.#claimLayers();
        return;
      case "slot":
        if (status === "queued") await runSlotAcquisition(this.#steps());
        return;
      case "dispatch":
        if (status === "dispatching") await runDispatch(this.#steps());
        return;
      case "lease":
        this.#apply({
          type: "attempt_failed",
          failure: "lost",
          message:
            status === "dispatching"
              ? "The dispatch was never answered."
              : `No event from the runner for ${RETRY_POLICY.leaseMs / 1000} s (lost runner).`,
        });
        return;
      case "deadline":
        this.#apply({ type: "deadline_passed" });
        return;
      case "retry":
        this.#apply({ type: "retry_due" });
        return;
      case "cancel":
        this.#apply({ type: "cancel_timeout" });
        return;
      case "outbox":
        return;
      case "gc":
        if (isTerminal(status) && this.#store.outbox().length === 0) {
          await this.ctx.storage.deleteAll();
          migrate(this.ctx.storage.sql, BUILD_MIGRATIONS);
        } else {
          this.#timers.set("gc", Date.now() + RETENTION_MS);
        }
        return;
    }
  }

  async #claimLayers(): Promise<void> {
    for (;;) {
      const rec = this.#store.load()!;
      if (rec.machine.status !== "waiting") return;
      const layers = this.#store.layers();
      const layer = layers.find((l) => l.state === "pending");
      if (!layer) {
        this.#apply({ type: "claims_done", layersToBuild: layers.filter((l) => l.state === "claimed").length });
        return;
      }
      // Above a layer this build rebuilds, every layer is rebuilt: its parent changes.
      const claimedBelow = layers.some((l) => l.index < layer.index && l.state === "claimed");
      const fresh = rec.mode === "ignore" || layer.index >= rec.freshFrom || claimedBelow;
      const decision = await this.env.LAYER_BUILD.getByName(layerBuildName(rec.workspaceId, layer.key)).claim(rec.workspaceId, layer.key, {
        buildId: rec.id,
        mode: rec.mode,
        fresh,
      });
      const now = this.#store.load()!;
      if (now.machine.status !== "waiting") {
        // Cancelled while the claim was in flight: give the key back.
        if (decision.kind === "claimed") this.#releaseKey(layer.index, layer.key, { kind: "abandoned" });
        return;
      }
      if (decision.kind === "claimed") {
        this.#store.setLayer(layer.index, "claimed");
        this.#store.setField("waiting_key", null);
      } else if (decision.kind === "cached") {
        this.#store.setLayer(layer.index, "cached", decision);
      } else if (decision.kind === "failed") {
        this.#apply({
          type: "dependency_failed",
          message: `Layer ${layer.key} failed in build ${decision.buildId} moments ago; it is not rebuilt until the failure memo expires.`,
        });
        return;
      } else {
        if (rec.waitingKey !== layer.key)
          this.#logs.system(0, `waiting for build ${decision.holder}, which is building layer ${layer.key.slice(0, 12)}`, Date.now());
        this.#store.setField("waiting_key", layer.key);
        this.#timers.set("claim", Date.now() + RECLAIM_MS);
        return;
      }
    }
  }

  /** Applies a machine event; `details`: what the runner reported with the failure the event brings (runner_failed). */
  #apply(event: MachineEvent, details?: FailureDetails): boolean {
    const rec = this.#store.load()!;
    const t = transition(rec.machine, event, RETRY_POLICY);
    if (!t.changed) return false;
    const now = Date.now();
    this.#store.saveMachine(t.state, now, isTerminal(t.state.status));
    // The details belong to the failure they came with: a new attempt (failure cleared), a
    // cancel or any other failure replaces them, so an earlier attempt's layer, exit code and
    // log tail never outlive a retry. Written before the effects: `finish` memoises the layer.
    const before = rec.machine.failure;
    const after = t.state.failure;
    if (event.type === "runner_failed") this.#store.setFailureDetails(details ?? null);
    else if (before?.reason !== after?.reason || before?.message !== after?.message) this.#store.setFailureDetails(null);
    for (const effect of t.effects) {
      switch (effect.type) {
        case "claim":
          this.#timers.set("claim", now);
          break;
        case "acquire_slot":
          this.#timers.set("slot", now);
          break;
        case "dispatch":
          this.#timers.set("dispatch", now);
          break;
        case "renew_lease": {
          this.#timers.set("lease", now + RETRY_POLICY.leaseMs);
          const attempt = this.#store.attempt(t.state.attemptNo);
          if (attempt && this.#timers.get("deadline") === null)
            this.#timers.set("deadline", attempt.deadlineMs + RETRY_POLICY.deadlineGraceMs);
          break;
        }
        case "end_attempt":
          this.#endAttempt(rec, now);
          break;
        case "schedule_retry":
          this.#timers.set("retry", now + effect.delayMs);
          this.#logs.system(
            rec.machine.attemptNo,
            `attempt ${rec.machine.attemptNo} failed (${t.state.failure?.message ?? "infra"}); retrying in ${effect.delayMs / 1000} s`,
            now,
          );
          break;
        case "schedule_cancel_timeout":
          this.#timers.set("cancel", now + RETRY_POLICY.cancelGraceMs);
          break;
        case "finish":
          this.#finish(now);
          break;
      }
    }
    this.#store.enqueue("sync", {});
    this.#wakeLogReaders();
    return true;
  }

  #endAttempt(rec: BuildRecord, now: number): void {
    const attempt = this.#store.attempt(rec.machine.attemptNo);
    for (const name of ["lease", "deadline", "dispatch", "cancel"]) this.#timers.clear(name);
    if (rec.slotFleet) this.#store.enqueue("release_slot", { fleetId: rec.slotFleet });
    this.#store.setField("slot_fleet", null);
    if (!attempt) return;
    this.#store.markAttempt(attempt.attemptNo, "ended_ms", now);
    this.#logs.closeAttempt(attempt.attemptNo, now);
    if (attempt.tokenHashes.length) this.#store.enqueue("revoke_tokens", { hashes: attempt.tokenHashes });
  }

  #finish(now: number): void {
    const rec = this.#store.load()!;
    for (const name of ["claim", "slot", "dispatch", "lease", "deadline", "retry", "cancel"]) this.#timers.clear(name);
    for (const fleetId of this.#store.queuedAt()) {
      this.#store.enqueue("release_slot", { fleetId });
      this.#store.setQueuedAt(fleetId, false);
    }
    const layers = this.#store.layers();
    const memoised =
      rec.machine.status === "timeout" || (rec.machine.status === "failed" && rec.machine.failure?.reason !== "dependency")
        ? (rec.failedLayer ?? layers.find((l) => l.state === "claimed")?.key ?? null)
        : null;
    for (const layer of layers) {
      if (layer.released) continue;
      const holds = layer.state === "claimed";
      if (holds || layer.key === rec.topKey || layer.key === rec.waitingKey) {
        this.#releaseKey(layer.index, layer.key, holds && layer.key === memoised ? { kind: "failed", memo: true } : { kind: "abandoned" });
      }
    }
    const m = rec.machine;
    this.#logs.system(m.attemptNo, `build ${m.status}${m.failure ? ` (${m.failure.reason}): ${m.failure.message}` : ""}`, now);
    this.#store.enqueue("archive_logs", {});
    this.#timers.set("gc", now + RETENTION_MS);
  }

  #releaseKey(index: number, key: string, outcome: ReleaseOutcome): void {
    this.#store.markReleased(index);
    this.#store.enqueue("release_key", { key, outcome });
  }

  #target(rec: BuildRecord, key: string): string {
    return targetReference(rec.origin, rec.workspaceName, key, rec.mode, rec.id);
  }

  /** Resolves when `waiters` are next woken (log readers: at a commit; flush waiters: after its outbox delivery) or after `ms`. */
  #nextChange(waiters: Set<() => void>, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      waiters.add(wake);
    });
  }

  #wakeLogReaders(): void {
    for (const wake of [...this.#logWaiters]) wake();
  }

  /** Arms the alarm for the earliest timer and delivers the outbox (in order; stops at the first failure). */
  async #commit(): Promise<void> {
    this.#wakeLogReaders();
    this.#store.pruneSeen(Date.now() - SEEN_RETENTION_MS);
    await this.#timers.arm();
    const run = this.#flushing.then(async () => {
      for (const item of this.#store.outbox()) {
        const rec = this.#store.load();
        if (!rec) return;
        try {
          await deliverOutboxItem(this.env, rec, item, this.#store, this.#logs);
          this.#store.settleOutbox(item.id, true);
        } catch (error) {
          this.#store.settleOutbox(item.id, false);
          log("warn", "outbox delivery failed; retrying", { object: "Build", buildId: rec.id, kind: item.kind, error: String(error) });
          this.#timers.set("outbox", Date.now() + Math.min(MAX_OUTBOX_BACKOFF_MS, 1000 * 2 ** item.tries));
          break;
        }
      }
      await this.#timers.arm();
    });
    this.#flushing = run.catch(() => undefined);
    try {
      await run;
    } finally {
      for (const wake of [...this.#flushWaiters]) wake();
    }
  }
}
