/**
 * `WebhookDelivery`: one Durable Object per webhook subscription (decision 0017), holding the
 * subscription's deliveries, each one's attempts (the delivery log) and a timer per pending
 * delivery behind the object's one alarm. An event is enqueued once per id (enqueuing it again
 * is a no-op), attempted at once, then retried on the schedule (workers/webhooks/schedule.ts)
 * until a 2xx or the schedule runs out. At least once: the next attempt's timer is written
 * before each attempt, so an attempt cut short by eviction is made again.
 *
 * @example
 * await env.WEBHOOK_DELIVERY.getByName(subscriptionId).enqueue({ subscriptionId, eventId, type, imageId, body });
 */

import { DurableObject } from "cloudflare:workers";
import type { WebhookDelivery as DeliveryView } from "@kiln-build/protocol";
import { log } from "../workers/log.ts";
import { ATTEMPT_TIMEOUT_MS, type AttemptOutcome, attemptDelivery } from "../workers/webhooks/attempt.ts";
import { nextAttemptMs, retrySchedule } from "../workers/webhooks/schedule.ts";
import { allowPrivateWebhooks, deliveryTarget } from "../workers/webhooks/store.ts";
import { migrate, TIMERS_TABLE, Timers } from "./storage.ts";

/** An event to deliver to this object's subscription. */
export type EnqueueParams = { subscriptionId: string; eventId: string; type: string; imageId: string | null; body: string };

const MIGRATIONS = [
  `CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE deliveries (id TEXT PRIMARY KEY, type TEXT NOT NULL, image_id TEXT, body TEXT NOT NULL, created_ms INTEGER NOT NULL,
     state TEXT NOT NULL, round_attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER, finished_ms INTEGER);
   CREATE INDEX deliveries_created ON deliveries (created_ms);
   CREATE TABLE attempts (delivery_id TEXT NOT NULL, n INTEGER NOT NULL, at_ms INTEGER NOT NULL, status_code INTEGER, error TEXT,
     duration_ms INTEGER NOT NULL, PRIMARY KEY (delivery_id, n));
   ${TIMERS_TABLE}`,
];

// While an attempt is in flight its timer points this far ahead: the retry if the object dies mid-attempt.
const IN_FLIGHT_LEASE_MS = ATTEMPT_TIMEOUT_MS + 45_000;
// Workers allow six open connections per invocation; more due deliveries wait for the next group.
const PARALLEL_ATTEMPTS = 6;
// Finished deliveries stay in the log this long.
const RETENTION_MS = 30 * 24 * 3_600_000;
const GC_TIMER = "gc";
const DELIVERY_TIMER = "d:";

type DeliveryRow = {
  id: string;
  type: string;
  image_id: string | null;
  body: string;
  created_ms: number;
  state: string;
  round_attempts: number;
};

/** The deliveries and delivery log of one subscription. */
export class WebhookDelivery extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #timers: Timers;
  #work: Promise<void> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#timers = new Timers(ctx.storage);
    void ctx.blockConcurrencyWhile(async () => migrate(this.#sql, MIGRATIONS));
  }

  /** Queues an event for delivery; `created: false` when this event id was queued before. */
  async enqueue(params: EnqueueParams): Promise<{ ok: true; created: boolean }> {
    this.#ready();
    this.#sql.exec("INSERT INTO meta (name, value) VALUES ('subscription', ?) ON CONFLICT DO NOTHING", params.subscriptionId);
    const now = Date.now();
    const dueMs = nextAttemptMs(this.#schedule(), 0, now) ?? now;
    const inserted = this.#sql.exec(
      `INSERT INTO deliveries (id, type, image_id, body, created_ms, state, next_ms) VALUES (?, ?, ?, ?, ?, 'pending', ?)
       ON CONFLICT (id) DO NOTHING`,
      params.eventId,
      params.type,
      params.imageId,
      params.body,
      now,
      dueMs,
    ).rowsWritten;
    if (inserted === 0) return { ok: true, created: false };
    this.#timers.set(DELIVERY_TIMER + params.eventId, dueMs);
    if (this.#timers.get(GC_TIMER) === null) this.#timers.set(GC_TIMER, now + RETENTION_MS);
    await this.#timers.arm();
    return { ok: true, created: true };
  }

  /** The newest deliveries first, each with its attempts. */
  async list(limit: number): Promise<DeliveryView[]> {
    this.#ready();
    const rows = this.#sql
      .exec<DeliveryRow & { next_ms: number | null }>(
        "SELECT * FROM deliveries ORDER BY created_ms DESC, id DESC LIMIT ?",
        Math.max(1, Math.min(100, limit)),
      )
      .toArray();
    return rows.map((r) => {
      const attempts = this.#sql
        .exec<{ at_ms: number; status_code: number | null; error: string | null; duration_ms: number }>(
          "SELECT * FROM attempts WHERE delivery_id = ? ORDER BY n",
          r.id,
        )
        .toArray()
        .map((a) => ({ at: new Date(a.at_ms).toISOString(), statusCode: a.status_code, error: a.error, durationMs: a.duration_ms }));
      return {
        id: r.id,
        type: r.type,
        imageId: r.image_id,
        createdAt: new Date(r.created_ms).toISOString(),
        state: r.state as DeliveryView["state"],
        attemptCount: attempts.length,
        attempts,
        nextAttemptAt: r.state === "pending" && r.next_ms !== null ? new Date(r.next_ms).toISOString() : null,
      };
    });
  }

  /** Delivers a finished (delivered or failed) delivery again, on a fresh schedule. */
  async redeliver(eventId: string): Promise<{ ok: true } | { ok: false; error: { code: "not_found" | "pending" } }> {
    this.#ready();
    const row = this.#sql.exec<{ state: string }>("SELECT state FROM deliveries WHERE id = ?", eventId).toArray()[0];
    if (!row) return { ok: false, error: { code: "not_found" } };
    if (row.state === "pending") return { ok: false, error: { code: "pending" } };
    const now = Date.now();
    this.#sql.exec(
      "UPDATE deliveries SET state = 'pending', round_attempts = 0, next_ms = ?, finished_ms = NULL WHERE id = ?",
      now,
      eventId,
    );
    this.#timers.set(DELIVERY_TIMER + eventId, now);
    await this.#timers.arm();
    return { ok: true };
  }

  /** Forgets everything (the subscription was deleted): no further attempt is made. */
  async drop(): Promise<void> {
    await this.ctx.storage.deleteAll();
    await this.ctx.storage.deleteAlarm();
  }

  /** Makes the attempts that are due, then re-arms. */
  override async alarm(): Promise<void> {
    await this.#runDue();
  }

  // Serialised: one run at a time, even when alarm() is entered again while a run awaits receivers.
  #runDue(): Promise<void> {
    const run = this.#work.then(async () => {
      this.#ready();
      const now = Date.now();
      const due = this.#timers.due(now);
      if (due.includes(GC_TIMER)) this.#collect(now);
      // Claimed before any await: a concurrent run cannot pick the same delivery.
      const claimed = due.filter((t) => t.startsWith(DELIVERY_TIMER)).map((t) => t.slice(DELIVERY_TIMER.length));
      for (const id of claimed) this.#timers.set(DELIVERY_TIMER + id, now + IN_FLIGHT_LEASE_MS);
      await this.#timers.arm();
      for (let i = 0; i < claimed.length; i += PARALLEL_ATTEMPTS) {
        await Promise.all(claimed.slice(i, i + PARALLEL_ATTEMPTS).map((id) => this.#attempt(id)));
      }
      await this.#timers.arm();
    });
    this.#work = run.catch(() => undefined);
    return run;
  }

  async #attempt(id: string): Promise<void> {
    const row = this.#sql.exec<DeliveryRow>("SELECT * FROM deliveries WHERE id = ? AND state = 'pending'", id).toArray()[0];
    if (!row) {
      this.#timers.clear(DELIVERY_TIMER + id);
      return;
    }
    const subscriptionId = this.#sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = 'subscription'").toArray()[0]?.value;
    const atMs = Date.now();
    let outcome: AttemptOutcome;
    let final = false;
    try {
      const target = subscriptionId ? await deliveryTarget(this.env, subscriptionId) : null;
      if (target) {
        outcome = await attemptDelivery(target, { id: row.id, body: row.body }, { allowPrivate: allowPrivateWebhooks(this.env) });
      } else {
        outcome = { statusCode: null, error: "The subscription was deleted.", durationMs: 0 };
        final = true;
      }
    } catch (error) {
      // Only our side can throw here (D1, the secret key): logged without the secret, retried like a failed attempt.
      log("error", "webhook attempt could not start", { object: "WebhookDelivery", subscriptionId, deliveryId: id, error: String(error) });
      outcome = { statusCode: null, error: "Kiln could not prepare the request; it will be retried.", durationMs: 0 };
    }
    this.#record(row, atMs, outcome, final);
  }

  // Re-checks the row after the outbound fetch (the object may have been dropped meanwhile).
  #record(row: DeliveryRow, atMs: number, outcome: AttemptOutcome, giveUp: boolean): void {
    this.#ready();
    const current = this.#sql
      .exec<{ round_attempts: number }>("SELECT round_attempts FROM deliveries WHERE id = ? AND state = 'pending'", row.id)
      .toArray()[0];
    if (!current) return;
    const n = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM attempts WHERE delivery_id = ?", row.id).one().n + 1;
    this.#sql.exec(
      "INSERT INTO attempts (delivery_id, n, at_ms, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
      row.id,
      n,
      atMs,
      outcome.statusCode,
      outcome.error,
      outcome.durationMs,
    );
    const round = current.round_attempts + 1;
    const now = Date.now();
    const next = outcome.error === null || giveUp ? null : nextAttemptMs(this.#schedule(), round, now);
    if (next === null) {
      const state = outcome.error === null ? "delivered" : "failed";
      this.#sql.exec(
        "UPDATE deliveries SET state = ?, round_attempts = ?, next_ms = NULL, finished_ms = ? WHERE id = ?",
        state,
        round,
        now,
        row.id,
      );
      this.#timers.clear(DELIVERY_TIMER + row.id);
      if (state === "failed")
        log("warn", "webhook delivery failed; giving up", { object: "WebhookDelivery", deliveryId: row.id, attempts: n });
      return;
    }
    this.#sql.exec("UPDATE deliveries SET round_attempts = ?, next_ms = ? WHERE id = ?", round, next, row.id);
    this.#timers.set(DELIVERY_TIMER + row.id, next);
  }

  // Deletes deliveries finished more than RETENTION_MS ago; the timer stays while anything is left.
  #collect(now: number): void {
    const old = "SELECT id FROM deliveries WHERE state != 'pending' AND finished_ms < ?";
    this.#sql.exec(`DELETE FROM attempts WHERE delivery_id IN (${old})`, now - RETENTION_MS);
    this.#sql.exec("DELETE FROM deliveries WHERE state != 'pending' AND finished_ms < ?", now - RETENTION_MS);
    const left = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM deliveries").one().n;
    if (left > 0) this.#timers.set(GC_TIMER, now + RETENTION_MS / 30);
    else this.#timers.clear(GC_TIMER);
  }

  // `drop()` deletes the tables with everything else; a later call (a racing enqueue, an attempt in flight) re-creates them.
  #ready(): void {
    migrate(this.#sql, MIGRATIONS);
  }

  #schedule(): readonly number[] {
    return retrySchedule(this.env.WEBHOOK_RETRY_SCHEDULE_MS);
  }
}
