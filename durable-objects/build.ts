/**
 * `Build`: one Durable Object per build (= dispatched job, named by its id). It claims its
 * layers bottom-up from their LayerBuild objects (waiting when another build holds one),
 * takes a slot from a fleet's FleetScheduler, dispatches signed attempts, accepts the
 * runner's events (fenced by attempt), keeps the live log, retries lost or refused attempts
 * and, at the end, releases everything and archives the log. Decisions come from
 * `build-machine.ts`; every outbound step runs from the one alarm (timers table) or the
 * outbox, after the state that asks for it was persisted, and re-checks state afterwards:
 * the timers are in `build-alarm.ts` (and `build-steps.ts`), applying a machine event in
 * `build-effects.ts`, the outbox run in `build-flush.ts`.
 *
 * @example
 * await env.BUILD.getByName(buildId).runnerEvent(webhookId, event);
 */
import { DurableObject } from "cloudflare:workers";
import type { RunnerEvent } from "@kiln-build/protocol";
import { runDueTimers, type TimerContext } from "./build-alarm.ts";
import { applyMachineEvent, type BuildParts, releaseKey } from "./build-effects.ts";
import { flushOutbox } from "./build-flush.ts";
import { BuildLogs, type LogChunk } from "./build-logs.ts";
import { isTerminal, type MachineEvent } from "./build-machine.ts";
import type { BuildSpec } from "./build-spec.ts";
import { BUILD_MIGRATIONS, type BuildRecord, BuildStore, type FailureDetails } from "./build-store.ts";
import { targetReference } from "./job.ts";
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

// Event ids are kept for twice the ±5 minute tolerance: an older replay is refused by its timestamp.
const SEEN_RETENTION_MS = 10 * 60_000;

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
      releaseKey(this.#store, index, result.key, {
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

  #parts(): BuildParts {
    return { store: this.#store, logs: this.#logs, timers: this.#timers };
  }

  #timerContext(): TimerContext {
    return {
      ...this.#parts(),
      env: this.env,
      storage: this.ctx.storage,
      apply: (e) => this.#apply(e),
      takeSlot: (f) => this.#takeSlot(f),
    };
  }

  // Serialised: one run of the timers at a time, even when alarm() is entered again while a run awaits I/O.
  #runDue(): Promise<void> {
    const run = this.#work.then(async () => {
      await runDueTimers(this.#timerContext());
      await this.#commit();
    });
    this.#work = run.catch(() => undefined);
    return run;
  }

  /** Applies a machine event (see `applyMachineEvent`) and wakes the log readers when it changed the build. */
  #apply(event: MachineEvent, details?: FailureDetails): boolean {
    if (!applyMachineEvent(this.#parts(), event, details)) return false;
    this.#wakeLogReaders();
    return true;
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
    const run = this.#flushing.then(() => flushOutbox(this.env, this.#parts()));
    this.#flushing = run.catch(() => undefined);
    try {
      await run;
    } finally {
      for (const wake of [...this.#flushWaiters]) wake();
    }
  }
}
