/**
 * `LayerBuild`: one Durable Object per (workspace, layer key), the coordination atom of build
 * dedupe. It holds who is building the key (at most one build at a time), the builds created
 * for submissions ending with the key, the cached result and the failure memo, and wakes the
 * builds waiting for the key when it is released. Decisions are in `join-policy.ts`; this
 * class loads, decides, persists, then acts.
 *
 * @example
 * const result = await env.LAYER_BUILD.getByName(layerBuildName(workspaceId, key)).submit(request);
 */
import { DurableObject } from "cloudflare:workers";
import { log } from "../workers/log.ts";
import type { BuildSpec } from "./build-spec.ts";
import { forgetCachedLayer } from "./cache-d1.ts";
import {
  applyRelease,
  type BuildMode,
  type ClaimDecision,
  type ClaimRequest,
  decideClaim,
  decideSubmit,
  type KeyState,
  type PendingBuild,
  type ReleaseOutcome,
} from "./join-policy.ts";
import { migrate, newId, TIMERS_TABLE, Timers } from "./storage.ts";

/** The object name of a (workspace, key) pair. */
export function layerBuildName(workspaceId: string, key: string): string {
  return `${workspaceId}/${key}`;
}

/** A submission whose top layer is this object's key; `spec` is used only if a new build is needed. */
export type SubmitParams = { mode: BuildMode; freshFrom: number; chainLength: number; spec: Omit<BuildSpec, "buildId"> };

/** How a submission was served: `created` a new build, `joined` an existing one, got the `cached` result or a memoised `failed` build. */
export type SubmitResult =
  | { ok: true; buildId: string; outcome: "created" | "joined" | "cached" | "failed" }
  | { ok: false; error: { code: "build_unavailable"; message: string } };

/** The failure memo window when `BUILD_FAILURE_MEMO_SECONDS` is unset or invalid. */
export const DEFAULT_FAILURE_MEMO_MS = 60_000;

/** The configured failure memo window. */
export function failureMemoMs(env: { BUILD_FAILURE_MEMO_SECONDS?: string }): number {
  const seconds = Number(env.BUILD_FAILURE_MEMO_SECONDS);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : DEFAULT_FAILURE_MEMO_MS;
}

const MIGRATIONS = [
  `CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE holder (one INTEGER PRIMARY KEY CHECK (one = 1), build_id TEXT NOT NULL, mode TEXT NOT NULL, claimed_ms INTEGER NOT NULL);
   CREATE TABLE pending (build_id TEXT PRIMARY KEY, mode TEXT NOT NULL, fresh_from INTEGER NOT NULL, created INTEGER NOT NULL, seq INTEGER NOT NULL);
   CREATE TABLE outcome (one INTEGER PRIMARY KEY CHECK (one = 1), success_build TEXT, digest TEXT, reference TEXT, size_bytes INTEGER, failed_build TEXT, failed_until_ms INTEGER);
   CREATE TABLE waiters (build_id TEXT PRIMARY KEY);
   CREATE TABLE notify (build_id TEXT PRIMARY KEY, tries INTEGER NOT NULL DEFAULT 0);
   ${TIMERS_TABLE}`,
  // Cached results found missing from the registry whose D1 row is still to be deleted (see `invalidate`).
  "CREATE TABLE invalidations (digest TEXT PRIMARY KEY, own_build TEXT)",
];

// Waking a waiting build is retried this often until it answers.
const NOTIFY_RETRY_MS = 5_000;
// Deleting an invalidated result's D1 row is retried this often until it succeeds.
const INVALIDATE_RETRY_MS = 5_000;

/** The coordination object of one (workspace, layer key). */
export class LayerBuild extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #timers: Timers;
  /** Build creations in flight, so joiners answer only once the build exists. */
  readonly #creating = new Map<string, Promise<void>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#timers = new Timers(ctx.storage);
    void ctx.blockConcurrencyWhile(async () => migrate(this.#sql, MIGRATIONS));
  }

  /** Serves a submission whose top layer is this key: join, cached, memoised failure, or a new build. */
  async submit(params: SubmitParams): Promise<SubmitResult> {
    this.#remember(params.spec.workspaceId, params.spec.layers.at(-1)!.key);
    for (;;) {
      const decision = decideSubmit(loadKeyState(this.#sql), params, Date.now());
      if (decision.kind === "cached" || decision.kind === "failed") return { ok: true, buildId: decision.buildId, outcome: decision.kind };
      if (decision.kind === "join") {
        const creating = this.#creating.get(decision.buildId);
        if (creating) {
          const failed = await creating.then(
            () => null,
            (e: unknown) => e,
          );
          if (failed) return unavailable();
          return { ok: true, buildId: decision.buildId, outcome: "joined" };
        }
        // A holder exists (it claimed the key); a pending build exists once created.
        if (this.#isCreated(decision.buildId)) return { ok: true, buildId: decision.buildId, outcome: "joined" };
        // A creation interrupted by an eviction: forget it and decide again.
        this.#sql.exec("DELETE FROM pending WHERE build_id = ?", decision.buildId);
      }
      return this.#create(params);
    }
  }

  /** A build asks to build this key now (see `decideClaim`); a `busy` claimant is woken on release. */
  async claim(workspaceId: string, key: string, request: ClaimRequest): Promise<ClaimDecision> {
    this.#remember(workspaceId, key);
    // An invalidated result leaves D1 before anyone may build the key again (D1's cache row is first-writer-wins).
    if (this.#invalidationsLeft()) await this.#forgetInvalidated();
    const decision = decideClaim(loadKeyState(this.#sql), request, Date.now());
    if (decision.kind === "claimed") {
      this.#sql.exec(
        "INSERT INTO holder (one, build_id, mode, claimed_ms) VALUES (1, ?, ?, ?) ON CONFLICT (one) DO NOTHING",
        request.buildId,
        request.mode,
        Date.now(),
      );
      this.#sql.exec("DELETE FROM waiters WHERE build_id = ?", request.buildId);
    } else if (decision.kind === "busy") {
      this.#sql.exec("INSERT INTO waiters (build_id) VALUES (?) ON CONFLICT DO NOTHING", request.buildId);
    }
    return decision;
  }

  /**
   * A build lets go of this key: it built it, failed, or ended without building it. Idempotent.
   * Waiting builds are woken before this returns when they can be reached (else by the alarm).
   */
  async release(buildId: string, mode: BuildMode, outcome: ReleaseOutcome): Promise<{ ok: true }> {
    const { state, notifyWaiters } = applyRelease(loadKeyState(this.#sql), buildId, mode, outcome, Date.now(), failureMemoMs(this.env));
    this.#save(state);
    this.#sql.exec("DELETE FROM waiters WHERE build_id = ?", buildId);
    if (notifyWaiters) {
      this.#sql.exec("INSERT INTO notify (build_id) SELECT build_id FROM waiters WHERE true ON CONFLICT DO NOTHING");
      this.#sql.exec("DELETE FROM waiters");
      this.#timers.set("notify", Date.now());
      await this.#timers.arm();
      await this.#notify();
    }
    return { ok: true };
  }

  /**
   * The cached result `digest` of this key is gone from the registry (the Build object that
   * found it checked the registry's own store): forget it, here and in D1, so the key is built
   * again. A result that has since replaced it is kept. `ownBuild`: the build whose own record of
   * that result goes too (it rebuilds the key). Idempotent; D1 is retried until it succeeds.
   */
  async invalidate(workspaceId: string, key: string, digest: string, ownBuild: string | null): Promise<{ ok: true }> {
    this.#remember(workspaceId, key);
    this.#sql.exec("UPDATE outcome SET success_build = NULL, digest = NULL, reference = NULL, size_bytes = NULL WHERE digest = ?", digest);
    this.#sql.exec("INSERT INTO invalidations (digest, own_build) VALUES (?, ?) ON CONFLICT DO NOTHING", digest, ownBuild);
    log("warn", "cached layer missing from the registry; invalidated", { object: "LayerBuild", workspaceId, key, digest });
    // Persisted above: a D1 failure is this object's to retry (its alarm; a claim waits for it).
    await this.#forgetInvalidated().catch(() => undefined);
    return { ok: true };
  }

  /**
   * The registry GC deleted this key's D1 cache row `digest` (no image uses it any more,
   * durable-objects/layer-cache-gc.ts): forget the same result here, so no submission is told
   * it is cached once its manifest is collected. A result that has since replaced it is kept.
   */
  async evict(workspaceId: string, key: string, digest: string): Promise<{ ok: true }> {
    this.#remember(workspaceId, key);
    this.#sql.exec("UPDATE outcome SET success_build = NULL, digest = NULL, reference = NULL, size_bytes = NULL WHERE digest = ?", digest);
    return { ok: true };
  }

  /** Retries waking builds that could not be reached, and deleting invalidated results from D1. */
  override async alarm(): Promise<void> {
    const due = this.#timers.due(Date.now());
    if (due.includes("notify")) await this.#notify();
    if (due.includes("invalidate")) await this.#forgetInvalidated().catch(() => undefined);
  }

  #invalidationsLeft(): boolean {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM invalidations").one().n > 0;
  }

  // Deletes the D1 rows of invalidated results; on failure the timer retries it (and a claim waits for it).
  async #forgetInvalidated(): Promise<void> {
    const rows = this.#sql.exec<{ digest: string; own_build: string | null }>("SELECT digest, own_build FROM invalidations").toArray();
    if (rows.length === 0) return;
    const workspaceId = this.#meta("workspace")!;
    const key = this.#meta("key")!;
    try {
      for (const row of rows) {
        await forgetCachedLayer(this.env, workspaceId, key, row.digest, row.own_build);
        this.#sql.exec("DELETE FROM invalidations WHERE digest = ?", row.digest);
      }
      this.#timers.clear("invalidate");
    } catch (error) {
      log("warn", "forgetting an invalidated layer failed; retrying", { object: "LayerBuild", key, error: String(error) });
      this.#timers.set("invalidate", Date.now() + INVALIDATE_RETRY_MS);
      throw error;
    } finally {
      await this.#timers.arm();
    }
  }

  async #create(params: SubmitParams): Promise<SubmitResult> {
    const buildId = newId("bd");
    const seq = this.#sql.exec<{ n: number }>("SELECT coalesce(max(seq), 0) + 1 AS n FROM pending").one().n;
    // Persist before the outbound call so concurrent submissions join this build instead of creating another.
    this.#sql.exec(
      "INSERT INTO pending (build_id, mode, fresh_from, created, seq) VALUES (?, ?, ?, 0, ?)",
      buildId,
      params.mode,
      params.freshFrom,
      seq,
    );
    const creation = this.env.BUILD.getByName(buildId).create({ ...params.spec, buildId });
    const settled = creation.then(() => undefined);
    this.#creating.set(buildId, settled);
    try {
      await settled;
      this.#sql.exec("UPDATE pending SET created = 1 WHERE build_id = ?", buildId);
      return { ok: true, buildId, outcome: "created" };
    } catch (error) {
      this.#sql.exec("DELETE FROM pending WHERE build_id = ?", buildId);
      log("error", "build creation failed", { object: "LayerBuild", buildId, error: String(error) });
      return unavailable();
    } finally {
      this.#creating.delete(buildId);
    }
  }

  async #notify(): Promise<void> {
    const key = this.#meta("key");
    const targets = this.#sql.exec<{ build_id: string }>("SELECT build_id FROM notify ORDER BY build_id").toArray();
    await Promise.all(
      targets.map(async ({ build_id }) => {
        try {
          await this.env.BUILD.getByName(build_id).keyReleased(key ?? "");
          this.#sql.exec("DELETE FROM notify WHERE build_id = ?", build_id);
        } catch (error) {
          this.#sql.exec("UPDATE notify SET tries = tries + 1 WHERE build_id = ?", build_id);
          log("warn", "waking a waiting build failed; retrying", { object: "LayerBuild", key, buildId: build_id, error: String(error) });
        }
      }),
    );
    const left = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM notify").one().n;
    if (left > 0) this.#timers.set("notify", Date.now() + NOTIFY_RETRY_MS);
    else this.#timers.clear("notify");
    await this.#timers.arm();
  }

  #save(state: KeyState): void {
    if (state.holder) {
      this.#sql.exec(
        "INSERT INTO holder (one, build_id, mode, claimed_ms) VALUES (1, ?, ?, ?) ON CONFLICT (one) DO UPDATE SET build_id = excluded.build_id, mode = excluded.mode",
        state.holder.buildId,
        state.holder.mode,
        Date.now(),
      );
    } else {
      this.#sql.exec("DELETE FROM holder");
    }
    const keep = new Set(state.pending.map((p) => p.buildId));
    for (const { build_id } of this.#sql.exec<{ build_id: string }>("SELECT build_id FROM pending").toArray()) {
      if (!keep.has(build_id)) this.#sql.exec("DELETE FROM pending WHERE build_id = ?", build_id);
    }
    const s = state.success;
    const f = state.failure;
    this.#sql.exec(
      `INSERT INTO outcome (one, success_build, digest, reference, size_bytes, failed_build, failed_until_ms) VALUES (1, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (one) DO UPDATE SET success_build = excluded.success_build, digest = excluded.digest, reference = excluded.reference,
         size_bytes = excluded.size_bytes, failed_build = excluded.failed_build, failed_until_ms = excluded.failed_until_ms`,
      s?.buildId ?? null,
      s?.digest ?? null,
      s?.reference ?? null,
      s?.sizeBytes ?? null,
      f?.buildId ?? null,
      f?.untilMs ?? null,
    );
  }

  #isCreated(buildId: string): boolean {
    const pending = this.#sql.exec<{ created: number }>("SELECT created FROM pending WHERE build_id = ?", buildId).toArray()[0];
    return pending === undefined || pending.created === 1;
  }

  #remember(workspaceId: string, key: string): void {
    if (this.#meta("key") !== null) return;
    this.#sql.exec("INSERT INTO meta (name, value) VALUES ('workspace', ?), ('key', ?) ON CONFLICT DO NOTHING", workspaceId, key);
  }

  #meta(name: string): string | null {
    return this.#sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = ?", name).toArray()[0]?.value ?? null;
  }
}

function unavailable(): SubmitResult {
  return { ok: false, error: { code: "build_unavailable", message: "The build could not be created. Retry the request." } };
}

/** The key's coordination state as `join-policy.ts` decides on it, read from the object's storage. */
export function loadKeyState(sql: SqlStorage): KeyState {
  const holder = sql.exec<{ build_id: string; mode: BuildMode }>("SELECT build_id, mode FROM holder").toArray()[0];
  const pending = sql
    .exec<{ build_id: string; mode: BuildMode; fresh_from: number }>("SELECT build_id, mode, fresh_from FROM pending ORDER BY seq")
    .toArray()
    .map((r): PendingBuild => ({ buildId: r.build_id, mode: r.mode, freshFrom: r.fresh_from }));
  const o = sql
    .exec<{
      success_build: string | null;
      digest: string | null;
      reference: string | null;
      size_bytes: number | null;
      failed_build: string | null;
      failed_until_ms: number | null;
    }>("SELECT * FROM outcome")
    .toArray()[0];
  return {
    holder: holder ? { buildId: holder.build_id, mode: holder.mode } : null,
    pending,
    success: o?.success_build ? { buildId: o.success_build, digest: o.digest!, reference: o.reference!, sizeBytes: o.size_bytes! } : null,
    failure: o?.failed_build ? { buildId: o.failed_build, untilMs: o.failed_until_ms! } : null,
  };
}
