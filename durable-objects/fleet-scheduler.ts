/**
 * `FleetScheduler`: one Durable Object per runner fleet, holding the fleet's build slots
 * (at most `maxConcurrentBuilds` at once) and the FIFO queue of builds waiting for one. A
 * freed slot goes to the queue's head, which is told through `Build.slotGranted`; a build
 * that no longer needs it declines and the slot moves on. Slots expire after the build's
 * deadline so a lost release cannot leak capacity.
 *
 * @example
 * const slot = await env.FLEET_SCHEDULER.getByName(fleet.id).acquire(fleet.id, buildId, { capacity: 4, enqueue: true, slotTtlMs });
 */
import { DurableObject } from "cloudflare:workers";
import { log } from "../workers/log.ts";
import { migrate, TIMERS_TABLE, Timers } from "./storage.ts";

/** The answer to `acquire`: a slot, a place in the queue, or neither (not queued, queue not empty or fleet full). */
export type AcquireResult = { granted: true } | { granted: false; position: number | null };

/** How a build asks for a slot. */
export type AcquireParams = { capacity: number; enqueue: boolean; slotTtlMs: number };

const MIGRATIONS = [
  `CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE slots (build_id TEXT PRIMARY KEY, granted_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL);
   CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, build_id TEXT NOT NULL UNIQUE, slot_ttl_ms INTEGER NOT NULL, enqueued_ms INTEGER NOT NULL);
   ${TIMERS_TABLE}`,
];

/** Capacity and wait queue of one fleet. */
export class FleetScheduler extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #timers: Timers;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#timers = new Timers(ctx.storage);
    void ctx.blockConcurrencyWhile(async () => migrate(this.#sql, MIGRATIONS));
  }

  /** Grants a slot if one is free and nobody waits; otherwise queues the build when `enqueue`. Idempotent per build. */
  async acquire(fleetId: string, buildId: string, params: AcquireParams): Promise<AcquireResult> {
    this.#setMeta("fleet", fleetId);
    this.#setMeta("capacity", String(Math.max(0, Math.floor(params.capacity))));
    if (this.#holds(buildId)) return { granted: true };
    const queued = this.#position(buildId);
    if (queued === null && this.#free() > 0 && this.#queueLength() === 0) {
      this.#grant(buildId, params.slotTtlMs);
      await this.#timers.arm();
      return { granted: true };
    }
    if (queued === null && params.enqueue) {
      this.#sql.exec(
        "INSERT INTO queue (build_id, slot_ttl_ms, enqueued_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        buildId,
        params.slotTtlMs,
        Date.now(),
      );
      // Capacity may be free while others wait (a pump in progress, a raised capacity): serve the head now.
      await this.#pump();
      if (this.#holds(buildId)) return { granted: true };
    }
    return { granted: false, position: this.#position(buildId) };
  }

  /** Frees the build's slot or queue place (idempotent), then hands free slots to the queue. */
  async release(buildId: string): Promise<{ ok: true }> {
    this.#sql.exec("DELETE FROM slots WHERE build_id = ?", buildId);
    this.#sql.exec("DELETE FROM queue WHERE build_id = ?", buildId);
    this.#scheduleExpiry();
    await this.#pump();
    return { ok: true };
  }

  /** Reclaims expired slots and serves the queue. */
  override async alarm(): Promise<void> {
    this.#sql.exec("DELETE FROM slots WHERE expires_ms <= ?", Date.now());
    this.#scheduleExpiry();
    await this.#pump();
  }

  async #pump(): Promise<void> {
    const fleetId = this.#getMeta("fleet") ?? "";
    while (this.#free() > 0) {
      const head = this.#sql
        .exec<{ build_id: string; slot_ttl_ms: number }>("SELECT build_id, slot_ttl_ms FROM queue ORDER BY seq LIMIT 1")
        .toArray()[0];
      if (!head) break;
      // Persist the grant before telling the build, so a crash cannot hand the slot out twice.
      this.#sql.exec("DELETE FROM queue WHERE build_id = ?", head.build_id);
      this.#grant(head.build_id, head.slot_ttl_ms);
      await this.#timers.arm();
      try {
        const answer = await this.env.BUILD.getByName(head.build_id).slotGranted(fleetId);
        if (!answer.accepted) {
          this.#sql.exec("DELETE FROM slots WHERE build_id = ?", head.build_id);
          this.#scheduleExpiry();
        }
      } catch (error) {
        // Keep the grant: the build finds it when it polls `acquire`, or it expires.
        log("warn", "telling a build about its slot failed", {
          object: "FleetScheduler",
          fleetId,
          buildId: head.build_id,
          error: String(error),
        });
      }
    }
    await this.#timers.arm();
  }

  #grant(buildId: string, ttlMs: number): void {
    const now = Date.now();
    this.#sql.exec(
      "INSERT INTO slots (build_id, granted_ms, expires_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
      buildId,
      now,
      now + ttlMs,
    );
    this.#scheduleExpiry();
  }

  #scheduleExpiry(): void {
    const earliest = this.#sql.exec<{ e: number | null }>("SELECT min(expires_ms) AS e FROM slots").one().e;
    if (earliest === null) this.#timers.clear("expire");
    else this.#timers.set("expire", earliest);
  }

  #holds(buildId: string): boolean {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM slots WHERE build_id = ?", buildId).one().n > 0;
  }

  #position(buildId: string): number | null {
    const row = this.#sql.exec<{ seq: number }>("SELECT seq FROM queue WHERE build_id = ?", buildId).toArray()[0];
    if (!row) return null;
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM queue WHERE seq < ?", row.seq).one().n;
  }

  #free(): number {
    return this.#capacity() - this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM slots").one().n;
  }

  #queueLength(): number {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM queue").one().n;
  }

  #capacity(): number {
    return Number(this.#getMeta("capacity") ?? "0");
  }

  #setMeta(name: string, value: string): void {
    this.#sql.exec("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", name, value);
  }

  #getMeta(name: string): string | null {
    return this.#sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = ?", name).toArray()[0]?.value ?? null;
  }
}
