/**
 * The Build object's SQLite storage: typed access to the rows of the tables build-migrations.ts
 * defines. Synchronous, like the storage API; no outbound I/O here.
 */
import type { LayerSpec } from "@kiln-build/protocol";
import type { BuildStatus, FailureReason, MachineState } from "./build-machine.ts";
import type { BuildLayer, BuildSpec } from "./build-spec.ts";
import type { BuildMode } from "./join-policy.ts";

/**
 * What the runner reported with the failure the machine holds: the layer it stopped at, the
 * build step's exit code and the last lines of output. They describe the current failure
 * only, and are cleared whenever that failure is replaced (a new attempt starts, a cancel).
 */
export type FailureDetails = { layer: string | null; exitCode: number | null; logTail: string[] };

/** The build's own row. */
export type BuildRecord = {
  id: string;
  workspaceId: string;
  workspaceName: string;
  origin: string;
  mode: BuildMode;
  freshFrom: number;
  builderVersion: string;
  parentKey: string | null;
  parentReference: string | null;
  timeoutMs: number;
  topKey: string;
  machine: MachineState;
  waitingKey: string | null;
  slotFleet: string | null;
  /** The layer a `failed` event named (for a failed step without one, the first unbuilt), memoised as failed when the build ends. */
  failedLayer: string | null;
  /** The failing build step's exit code, from the same event; null when it reported none or the failure was not a step's. */
  failureExitCode: number | null;
  /** The last lines of output the same event carried (capped, see runner-events.ts); empty when none. */
  failureLogTail: string[];
  createdMs: number;
  updatedMs: number;
  finishedMs: number | null;
  logArchive: string | null;
  /** The `x-request-id` of the submission that created the build. */
  requestId: string | null;
};

/** Where each of the build's layers stands. */
export type LayerState = "pending" | "cached" | "claimed" | "built";
/** One of the build's layers. */
export type LayerRow = {
  index: number;
  key: string;
  state: LayerState;
  digest: string | null;
  reference: string | null;
  sizeBytes: number | null;
  released: boolean;
};
/** One dispatch attempt. */
export type AttemptRow = {
  attemptNo: number;
  attemptId: string;
  fleetId: string;
  deadlineMs: number;
  dispatchedMs: number | null;
  endedMs: number | null;
  tokenHashes: string[];
};
/** Work to do after state changed, delivered in order by the object's outbox. */
export type OutboxItem = { id: number; kind: string; payload: string; tries: number };

// SQLite rows in a Durable Object are capped at 2 MB; a layer spec can be larger (a 2 MiB build function).
const SPEC_PART_CHARS = 256 * 1024;

type Row = Record<string, SqlStorageValue>;

/** Typed access to a Build object's tables. */
export class BuildStore {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Writes a new build; false when one exists already (creation is idempotent). */
  init(spec: BuildSpec, nowMs: number): boolean {
    if (this.load()) return false;
    this.#sql.exec(
      `INSERT INTO build (one, id, workspace_id, workspace_name, origin, mode, fresh_from, builder_version, parent_key, parent_reference, timeout_ms,
         top_key, status, attempt_no, cancel_requested, created_ms, updated_ms, request_id) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', 0, 0, ?, ?, ?)`,
      spec.buildId,
      spec.workspaceId,
      spec.workspaceName,
      spec.origin,
      spec.mode,
      spec.freshFrom,
      spec.builderVersion,
      spec.parentKey,
      spec.parentReference,
      spec.timeoutMs,
      spec.layers.at(-1)!.key,
      nowMs,
      nowMs,
      spec.requestId ?? null,
    );
    for (const layer of spec.layers) {
      this.#sql.exec("INSERT INTO layers (idx, key, state) VALUES (?, ?, 'pending')", layer.index, layer.key);
      this.#putSpec(layer);
    }
    return true;
  }

  #putSpec(layer: BuildLayer): void {
    const json = JSON.stringify(layer.spec);
    for (let part = 0; part * SPEC_PART_CHARS < json.length; part++) {
      this.#sql.exec(
        "INSERT INTO layer_spec_parts (idx, part, data) VALUES (?, ?, ?)",
        layer.index,
        part,
        json.slice(part * SPEC_PART_CHARS, (part + 1) * SPEC_PART_CHARS),
      );
    }
  }

  /** The build row, or null before `init`. */
  load(): BuildRecord | null {
    const r = this.#sql.exec<Row>("SELECT * FROM build").toArray()[0];
    if (!r) return null;
    return {
      id: r.id as string,
      workspaceId: r.workspace_id as string,
      workspaceName: r.workspace_name as string,
      origin: r.origin as string,
      mode: r.mode as BuildMode,
      freshFrom: r.fresh_from as number,
      builderVersion: r.builder_version as string,
      parentKey: r.parent_key as string | null,
      parentReference: r.parent_reference as string | null,
      timeoutMs: r.timeout_ms as number,
      topKey: r.top_key as string,
      machine: {
        status: r.status as BuildStatus,
        attemptNo: r.attempt_no as number,
        cancelRequested: r.cancel_requested === 1,
        failure: r.failure_reason ? { reason: r.failure_reason as FailureReason, message: (r.failure_message as string) ?? "" } : null,
      },
      waitingKey: r.waiting_key as string | null,
      slotFleet: r.slot_fleet as string | null,
      failedLayer: r.failed_layer as string | null,
      failureExitCode: (r.failure_exit_code as number | null) ?? null,
      failureLogTail: r.failure_log_tail ? (JSON.parse(r.failure_log_tail as string) as string[]) : [],
      createdMs: r.created_ms as number,
      updatedMs: r.updated_ms as number,
      finishedMs: r.finished_ms as number | null,
      logArchive: r.log_archive as string | null,
      requestId: (r.request_id as string | null) ?? null,
    };
  }

  /** Persists the machine's state (and the finish time on entering a terminal status). */
  saveMachine(state: MachineState, nowMs: number, terminal: boolean): void {
    this.#sql.exec(
      `UPDATE build SET status = ?, attempt_no = ?, cancel_requested = ?, failure_reason = ?, failure_message = ?, updated_ms = ?,
         finished_ms = CASE WHEN ? THEN coalesce(finished_ms, ?) ELSE finished_ms END`,
      state.status,
      state.attemptNo,
      state.cancelRequested ? 1 : 0,
      state.failure?.reason ?? null,
      state.failure?.message ?? null,
      nowMs,
      terminal ? 1 : 0,
      nowMs,
    );
  }

  /** Sets one of the build row's bookkeeping columns. */
  setField(column: "waiting_key" | "slot_fleet" | "log_archive", value: string | null): void {
    this.#sql.exec(`UPDATE build SET ${column} = ?`, value);
  }

  /** Records what the runner reported with the current failure, or forgets it (null). */
  setFailureDetails(details: FailureDetails | null): void {
    this.#sql.exec(
      "UPDATE build SET failed_layer = ?, failure_exit_code = ?, failure_log_tail = ?",
      details?.layer ?? null,
      details?.exitCode ?? null,
      details?.logTail.length ? JSON.stringify(details.logTail) : null,
    );
  }

  /** The build's layers in chain order. */
  layers(): LayerRow[] {
    return this.#sql
      .exec<Row>("SELECT * FROM layers ORDER BY idx")
      .toArray()
      .map((r) => ({
        index: r.idx as number,
        key: r.key as string,
        state: r.state as LayerState,
        digest: r.digest as string | null,
        reference: r.reference as string | null,
        sizeBytes: r.size_bytes as number | null,
        released: r.released === 1,
      }));
  }

  /** Records a layer's state, with its result when it has one. */
  setLayer(index: number, state: LayerState, result?: { digest: string; reference: string; sizeBytes: number }): void {
    this.#sql.exec(
      "UPDATE layers SET state = ?, digest = coalesce(?, digest), reference = coalesce(?, reference), size_bytes = coalesce(?, size_bytes) WHERE idx = ?",
      state,
      result?.digest ?? null,
      result?.reference ?? null,
      result?.sizeBytes ?? null,
      index,
    );
  }

  /** Puts a layer back to be claimed and built again (its result is gone), forgetting its result and release. */
  resetLayer(index: number): void {
    this.#sql.exec(
      "UPDATE layers SET state = 'pending', digest = NULL, reference = NULL, size_bytes = NULL, released = 0 WHERE idx = ?",
      index,
    );
  }

  /** Adds the layer below the build's first one, to be claimed and built (the cached image the build stood on is gone). */
  addLayerBelow(layer: BuildLayer, parentKey: string | null, parentReference: string | null): void {
    this.#sql.exec("INSERT INTO layers (idx, key, state) VALUES (?, ?, 'pending')", layer.index, layer.key);
    this.#putSpec(layer);
    this.#sql.exec("UPDATE build SET parent_key = ?, parent_reference = ?", parentKey, parentReference);
  }

  /** Records that the cached layer `key` was found missing from the registry by attempt `attemptNo`. */
  markMissingLayer(key: string, attemptNo: number, nowMs: number): void {
    this.#sql.exec(
      "INSERT INTO missing_layers (key, attempt_no, found_ms) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET attempt_no = excluded.attempt_no",
      key,
      attemptNo,
      nowMs,
    );
  }

  /** The last attempt that found cached layer `key` missing, or null if none did. */
  missingLayerFoundBy(key: string): number | null {
    return (
      this.#sql.exec<{ attempt_no: number }>("SELECT attempt_no FROM missing_layers WHERE key = ?", key).toArray()[0]?.attempt_no ?? null
    );
  }

  /** Whether attempt `attemptNo` found a cached layer missing (its failure is the cache's, not a layer's). */
  attemptFoundMissingLayer(attemptNo: number): boolean {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM missing_layers WHERE attempt_no = ?", attemptNo).one().n > 0;
  }

  /** Marks a layer's key as released to its LayerBuild object. */
  markReleased(index: number): void {
    this.#sql.exec("UPDATE layers SET released = 1 WHERE idx = ?", index);
  }

  /** The submitted spec of the layer at chain index `index`. */
  layerSpec(index: number): BuildLayer {
    const key = this.#sql.exec<{ key: string }>("SELECT key FROM layers WHERE idx = ?", index).one().key;
    const json = this.#sql
      .exec<{ data: string }>("SELECT data FROM layer_spec_parts WHERE idx = ? ORDER BY part", index)
      .toArray()
      .map((r) => r.data)
      .join("");
    return { index, key, spec: JSON.parse(json) as LayerSpec };
  }

  /** The attempt numbered `attemptNo`, or null. */
  attempt(attemptNo: number): AttemptRow | null {
    const r = this.#sql.exec<Row>("SELECT * FROM attempts WHERE attempt_no = ?", attemptNo).toArray()[0];
    return r ? this.#attempt(r) : null;
  }

  /** Every attempt, oldest first. */
  attempts(): AttemptRow[] {
    return this.#sql
      .exec<Row>("SELECT * FROM attempts ORDER BY attempt_no")
      .toArray()
      .map((r) => this.#attempt(r));
  }

  /** Creates attempt `attemptNo` once (a replayed dispatch reuses it). */
  ensureAttempt(attemptNo: number, attemptId: string, fleetId: string, deadlineMs: number): AttemptRow {
    this.#sql.exec(
      "INSERT INTO attempts (attempt_no, attempt_id, fleet_id, deadline_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
      attemptNo,
      attemptId,
      fleetId,
      deadlineMs,
    );
    return this.attempt(attemptNo)!;
  }

  /** Adds a minted job token's hash to an attempt (so it can be revoked). */
  addTokenHash(attemptNo: number, hash: string): void {
    this.#sql.exec("UPDATE attempts SET token_hashes = json_insert(token_hashes, '$[#]', ?) WHERE attempt_no = ?", hash, attemptNo);
  }

  /** Marks an attempt as dispatched (the fleet answered 2xx) or ended. */
  markAttempt(attemptNo: number, column: "dispatched_ms" | "ended_ms", nowMs: number): void {
    this.#sql.exec(`UPDATE attempts SET ${column} = coalesce(${column}, ?) WHERE attempt_no = ?`, nowMs, attemptNo);
  }

  /** Fleets whose queue this build is in. */
  queuedAt(): string[] {
    return this.#sql
      .exec<{ fleet_id: string }>("SELECT fleet_id FROM queued_at ORDER BY fleet_id")
      .toArray()
      .map((r) => r.fleet_id);
  }

  /** Records (or forgets) being queued at a fleet. */
  setQueuedAt(fleetId: string, queued: boolean): void {
    if (queued) this.#sql.exec("INSERT INTO queued_at (fleet_id) VALUES (?) ON CONFLICT DO NOTHING", fleetId);
    else this.#sql.exec("DELETE FROM queued_at WHERE fleet_id = ?", fleetId);
  }

  /** Whether a runner event id was processed before (a replay). */
  wasSeen(webhookId: string): boolean {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM seen_events WHERE webhook_id = ?", webhookId).one().n > 0;
  }

  /** Records a processed runner event id. */
  markSeen(webhookId: string, nowMs: number): void {
    this.#sql.exec("INSERT INTO seen_events (webhook_id, seen_ms) VALUES (?, ?) ON CONFLICT DO NOTHING", webhookId, nowMs);
  }

  /** Forgets event ids older than `beforeMs` (the ±5 min tolerance already refuses them). */
  pruneSeen(beforeMs: number): void {
    this.#sql.exec("DELETE FROM seen_events WHERE seen_ms < ?", beforeMs);
  }

  /** Queues work for the outbox. */
  enqueue(kind: string, payload: unknown): void {
    this.#sql.exec("INSERT INTO outbox (kind, payload) VALUES (?, ?)", kind, JSON.stringify(payload));
  }

  /** The outbox, oldest first. */
  outbox(): OutboxItem[] {
    return this.#sql
      .exec<Row>("SELECT * FROM outbox ORDER BY id")
      .toArray()
      .map((r) => ({ id: r.id as number, kind: r.kind as string, payload: r.payload as string, tries: r.tries as number }));
  }

  /** Removes a delivered outbox item, or counts a failed try. */
  settleOutbox(id: number, delivered: boolean): void {
    if (delivered) this.#sql.exec("DELETE FROM outbox WHERE id = ?", id);
    else this.#sql.exec("UPDATE outbox SET tries = tries + 1 WHERE id = ?", id);
  }

  #attempt(r: Row): AttemptRow {
    return {
      attemptNo: r.attempt_no as number,
      attemptId: r.attempt_id as string,
      fleetId: r.fleet_id as string,
      deadlineMs: r.deadline_ms as number,
      dispatchedMs: r.dispatched_ms as number | null,
      endedMs: r.ended_ms as number | null,
      tokenHashes: JSON.parse(r.token_hashes as string) as string[],
    };
  }
}
