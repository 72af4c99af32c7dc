/**
 * `Build`: one Durable Object per build (= dispatched job, named by its id). It claims its
 * layers bottom-up from their LayerBuild objects (waiting when another build holds one),
 * takes a slot from a fleet's FleetScheduler, dispatches signed attempts, accepts the
 * runner's events (fenced by attempt), keeps the live log, retries lost or refused attempts
 * and, at the end, releases everything and archives the log. Decisions come from
 * `build-machine.ts`; every outbound step runs from the one alarm (timers table) or the
 * outbox, after the state that asks for it was persisted, and re-checks state afterwards:
 * the timers are in `build-alarm.ts` (and `build-steps.ts`), applying a machine event in
 * `build-effects.ts`, the outbox run in `build-flush.ts`. A runner is believed only with the
 * registry's word: a layer result is checked in the built-in registry's own store before it is
 * recorded or cached, and a failure is checked for a cached image gone missing (rebuilt once)
 * or a base image that does not exist (`report-verify.ts`); events are applied one at a time.
 *
 * @example
 * await env.BUILD.getByName(buildId).runnerEvent(webhookId, event);
 */
import { DurableObject } from "cloudflare:workers";
import type { BaseDigestsReport, RunnerEvent, SbomEvent } from "@kiln-build/protocol";
import type { AttestationFactsAnswer, PushAttestationFactsAnswer } from "../workers/attestations/facts.ts";
import { attestationFacts } from "./attestation-facts.ts";
import { BaseDigestStore, type BaseDigestsRefusal, checkBaseDigests } from "./base-digests.ts";
import { runDueTimers, type TimerContext } from "./build-alarm.ts";
import { applyMachineEvent, type BuildParts, rebuildMissingLayer, releaseKey } from "./build-effects.ts";
import { flushOutbox } from "./build-flush.ts";
import { BuildLogs, type LogChunk } from "./build-logs.ts";
import { isTerminal, type MachineEvent } from "./build-machine.ts";
import { BUILD_MIGRATIONS } from "./build-migrations.ts";
import { BuildPushStore } from "./build-push.ts";
import type { BuildSpec } from "./build-spec.ts";
import { type BuildRecord, BuildStore, type FailureDetails, type LayerRow } from "./build-store.ts";
import { BuildTimeline, type TimelineRecord } from "./build-timeline-store.ts";
import { targetReference } from "./job.ts";
import { type PushAttestationAsk, pushAttestationFacts } from "./push-attestation-facts.ts";
import { buildsOnParent, parentImage, pulledLayer, type StoredRecipe } from "./report-checks.ts";
import { checkLayerReport, diagnoseFailure } from "./report-verify.ts";
import { type EventPlan, planRunnerEvent, type ReportChecks } from "./runner-events.ts";
import { migrate, Timers } from "./storage.ts";
import { timelineRecord } from "./timeline-snapshot.ts";

/** The answer to a runner event. */
export type RunnerEventResult =
  | { ok: true; cancel: boolean }
  | {
      ok: false;
      error: {
        code: "unknown_build" | "stale_attempt" | "duplicate_event" | "unknown_layer" | "unknown_push_target" | "log_gap_too_large";
      };
    };

/** A page of log for a reader: `archived` when the object no longer holds it (read R2 instead). */
export type LogPage =
  | { ok: true; chunks: LogChunk[]; lastPos: number; done: boolean; status: string; archived: string | null }
  | { ok: false; error: { code: "unknown_build" } };

// Event ids are kept for twice the ±5 minute tolerance: an older replay is refused by its timestamp.
const SEEN_RETENTION_MS = 10 * 60_000;
// An event is checked against the registry at most this often before it is refused for the runner to resend.
const MAX_CHECK_ROUNDS = 4;

/** The registry's answers about an event, with the cached image a failure diagnosis was made for. */
type Checks = ReportChecks & { pulled?: string | null };

// The answers that still hold for the build's current layers: a result checked against another parent, or a failure diagnosed for another image, is checked again.
function stillValid(checks: Checks, rec: BuildRecord, layers: readonly LayerRow[]): Checks {
  const valid: Checks = { ...checks };
  const layer = checks.layer ? layers.find((l) => l.key === checks.layer!.key) : undefined;
  if (checks.layer && (!layer || (parentImage(layers, layer.index, rec.parentReference)?.reference ?? null) !== checks.layer.parent))
    delete valid.layer;
  if (checks.failure !== undefined && (pulledLayer(layers, rec)?.reference ?? null) !== (checks.pulled ?? null)) {
    delete valid.failure;
    delete valid.pulled;
  }
  return valid;
}

/** One build's lifecycle. */
export class Build extends DurableObject<Env> {
  readonly #store: BuildStore;
  readonly #logs: BuildLogs;
  readonly #timers: Timers;
  readonly #pushes: BuildPushStore;
  readonly #bases: BaseDigestStore;
  readonly #timeline: BuildTimeline;
  #work: Promise<void> = Promise.resolve();
  #events: Promise<unknown> = Promise.resolve();
  #flushing: Promise<void> = Promise.resolve();
  readonly #logWaiters = new Set<() => void>();
  /** Woken after each outbox delivery (waitForEnd answers once D1 has the outcome). */
  readonly #flushWaiters = new Set<() => void>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new BuildStore(ctx.storage.sql);
    this.#logs = new BuildLogs(ctx.storage.sql);
    this.#timers = new Timers(ctx.storage);
    this.#pushes = new BuildPushStore(ctx.storage.sql);
    this.#bases = new BaseDigestStore(ctx.storage.sql);
    this.#timeline = new BuildTimeline(ctx.storage.sql);
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage.sql, BUILD_MIGRATIONS));
  }

  /** Creates the build (idempotent) and starts claiming its layers; its D1 row exists when this returns. */
  async create(spec: BuildSpec): Promise<{ ok: true }> {
    if (this.#store.init(spec, Date.now())) {
      this.#pushes.init(spec.push);
      this.#logs.system(0, `build ${spec.buildId} created for ${spec.layers.length} layer(s), mode ${spec.mode}`, Date.now());
      this.#timers.set("claim", Date.now());
      this.#store.enqueue("sync", {});
    }
    await this.#commit();
    return { ok: true };
  }

  /**
   * A verified runner event (the route checked its signature): fenced, deduplicated by
   * `webhookId`, checked against the registry where it claims a result or reports a failure,
   * applied. One event at a time, in arrival order: the checks await D1 and R2.
   */
  async runnerEvent(webhookId: string, event: RunnerEvent): Promise<RunnerEventResult> {
    const run = this.#events.then(() => this.#runnerEvent(webhookId, event));
    this.#events = run.catch(() => undefined);
    return run;
  }

  /** How this build builds layer `key` (its spec as JSON, the key below it), for a build that must rebuild it; null if it does not. */
  async layerRecipe(key: string): Promise<StoredRecipe | null> {
    const rec = this.#store.load();
    const layers = this.#store.layers();
    const row = layers.find((l) => l.key === key);
    if (!rec || !row) return null;
    const below = layers.find((l) => l.index === row.index - 1);
    return {
      index: row.index,
      key,
      specJson: JSON.stringify(this.#store.layerSpec(row.index).spec),
      parentKey: below?.key ?? rec.parentKey,
    };
  }

  async #runnerEvent(webhookId: string, event: RunnerEvent): Promise<RunnerEventResult> {
    let checks: Checks = {};
    // Plan, check what the plan rests on (awaits: other calls interleave), plan again on the state as it is now.
    for (let round = 0; round < MAX_CHECK_ROUNDS; round++) {
      const planned = this.#plan(webhookId, event, checks);
      if (!planned.ok) return planned;
      const more = await this.#check(planned.rec, event, planned.plan, planned.checks);
      if (more === null) return this.#applyEvent(webhookId, event, planned.rec, planned.plan);
      checks = more;
    }
    // Nothing was applied: the runner retries the event.
    throw new Error("the build changed under every check of the runner's event");
  }

  // The event planned on the current state, with the registry's answers that still hold for it.
  #plan(webhookId: string, event: RunnerEvent, checks: Checks) {
    const rec = this.#store.load();
    if (!rec) return { ok: false as const, error: { code: "unknown_build" as const } };
    // A replay first: an event applied before is "delivered", even if its attempt has ended since.
    if (this.#store.wasSeen(webhookId)) return { ok: false as const, error: { code: "duplicate_event" as const } };
    const layers = this.#store.layers();
    const valid = stillValid(checks, rec, layers);
    const attempt = this.#store.attempt(rec.machine.attemptNo);
    const push = { push: this.#pushes.load(), reported: this.#pushes.reported(rec.machine.attemptNo) };
    const planned = planRunnerEvent(rec.machine, attempt, layers, event, (key) => this.#target(rec, key), valid, push);
    if (!planned.ok) return { ok: false as const, error: { code: planned.error } };
    return { ok: true as const, rec, plan: planned.plan, checks: valid };
  }

  // What the registry says that the plan lacks, or null when it lacks nothing.
  async #check(rec: BuildRecord, event: RunnerEvent, plan: EventPlan, checks: Checks): Promise<Checks | null> {
    const layers = this.#store.layers();
    if (plan.verify) {
      const { key, digest, index } = plan.verify;
      const onParent = buildsOnParent(this.#store.layerSpec(index).spec.dockerfileCommands);
      const parent = parentImage(layers, index, rec.parentReference);
      return { ...checks, layer: await checkLayerReport(this.env, { key, digest, target: this.#target(rec, key), parent, onParent }) };
    }
    if (event.type !== "failed" || checks.failure !== undefined) return null;
    const context = { ...rec, buildId: rec.id, layers, foundMissingBy: (key: string) => this.#store.missingLayerFoundBy(key) };
    const { diagnosis, pulled } = await diagnoseFailure(this.env, context, event);
    return { ...checks, failure: diagnosis, pulled };
  }

  async #applyEvent(webhookId: string, event: RunnerEvent, rec: BuildRecord, plan: EventPlan): Promise<RunnerEventResult> {
    const now = Date.now();
    const attemptNo = rec.machine.attemptNo;
    const chunk = event.type === "log" ? { seq: event.seq, entries: [event] } : event.type === "logs" ? event : null;
    if (chunk && this.#logs.append(attemptNo, chunk, now) === "overflow") return { ok: false, error: { code: "log_gap_too_large" } };
    this.#store.markSeen(webhookId, now);
    this.#timeline.fromRunner(attemptNo, event, now);
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
      this.#logs.system(attemptNo, `layer ${result.key.slice(0, 12)} built: ${result.digest}`, now);
    }
    if (plan.pushed) {
      const { position, result } = plan.pushed;
      this.#pushes.record(position, attemptNo, result);
      this.#store.enqueue("push_result", { imageId: this.#pushes.load()!.imageId, position, result });
      const outcome = result.status === "succeeded" ? `pushed ${result.digest}` : `push failed: ${result.message}`;
      this.#logs.system(attemptNo, `${result.reference}: ${outcome}`, now);
    }
    if (plan.refused) this.#logs.system(attemptNo, `layer result refused: ${plan.refused}`, now);
    if (event.type === "failed") this.#logs.system(attemptNo, `runner reported failure (${event.reason}): ${event.message}`, now);
    if (plan.missingLayer) this.#store.markMissingLayer(plan.missingLayer.key, attemptNo, now);
    this.#apply(plan.machine, plan.failure);
    if (plan.missingLayer) rebuildMissingLayer(this.#parts(), plan.missingLayer, now);
    await this.#commit();
    // A refused result ended the attempt: the runner is asked to stop at once.
    return { ok: true, cancel: plan.refused !== undefined || this.#store.load()!.machine.cancelRequested };
  }

  /** The facts the attestation service signs for a runner's `sbom` report (decision 0024); read-only. */
  async attestationFacts(event: SbomEvent): Promise<AttestationFactsAnswer> {
    const { rec, attempt, specOf } = this.#current();
    return attestationFacts(rec, rec?.machine ?? null, attempt, this.#store.layers(), event, specOf, this.#bases.all());
  }

  /** Records the base digests the job's runner resolved (decision 0024), when the report is the current attempt's own. */
  async recordBaseDigests(report: BaseDigestsReport): Promise<{ ok: true } | { ok: false; error: BaseDigestsRefusal }> {
    const { rec, attempt, specOf } = this.#current();
    const checked = checkBaseDigests(rec?.machine ?? null, attempt, this.#store.layers(), report, specOf);
    if (checked.ok) this.#bases.record(attempt!.attemptNo, checked.bases);
    return checked.ok ? { ok: true } : checked;
  }

  /** The facts the attestation service signs for a runner's pushed image (decision 0024, external registries); read-only. */
  async pushAttestationFacts(ask: PushAttestationAsk): Promise<PushAttestationFactsAnswer> {
    const { rec, attempt } = this.#current();
    const resultOf = (p: number) => this.#pushes.result(p);
    return pushAttestationFacts(rec, rec?.machine ?? null, attempt, this.#store.layers(), this.#pushes.load(), resultOf, ask);
  }

  // The build, its current attempt and a reader of its layer specs (for the attestation reports).
  #current() {
    const rec = this.#store.load();
    return { rec, attempt: rec ? this.#store.attempt(rec.machine.attemptNo) : null, specOf: (i: number) => this.#store.layerSpec(i).spec };
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

  /** What the build's timeline is made of (timeline.ts assembles it); null for an unknown build. */
  async timelineRecord(): Promise<TimelineRecord | null> {
    return timelineRecord(this.#store, this.#timeline, Date.now());
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
    return { store: this.#store, logs: this.#logs, timers: this.#timers, pushes: this.#pushes, timeline: this.#timeline };
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
