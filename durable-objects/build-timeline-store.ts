/**
 * The Build object's timeline tables: the orchestrator's marks (each status the build
 * enters, the runner's `started`, the layer a waiting build waits for) and the phase spans
 * runners report, with each attempt's runner clock offset. `timelineRecord` snapshots them
 * with the build's row, layers and attempts, on the orchestrator's clock: what the API
 * assembles (timeline.ts) and what the log archive keeps in R2 once the build ended.
 */
import type { RunnerEvent, RunnerPhase } from "@kiln-build/protocol";

/** The timeline tables (Build object migration 6). */
export const TIMELINE_TABLES = `
  CREATE TABLE timeline_marks (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, kind TEXT NOT NULL, attempt_no INTEGER NOT NULL,
    fleet_id TEXT, layer_key TEXT, note TEXT);
  CREATE TABLE phases (attempt_no INTEGER NOT NULL, span INTEGER NOT NULL, layer_key TEXT NOT NULL, kind TEXT NOT NULL, step INTEGER, total_steps INTEGER,
    line TEXT, started_ms INTEGER NOT NULL, ended_ms INTEGER, outcome TEXT NOT NULL, exit_code INTEGER, PRIMARY KEY (attempt_no, span));
  CREATE TABLE runner_clock (attempt_no INTEGER PRIMARY KEY, offset_ms INTEGER NOT NULL);`;

// Spans per attempt beyond this are dropped: a timeline is for reading, and the object's storage is finite.
const MAX_SPANS_PER_ATTEMPT = 4096;

/** One orchestrator mark. */
export type TimelineMark = {
  atMs: number;
  /** A status the build entered, `runner_started`, or `waiting_on` (the layer in `layerKey`, the holder in `note`). */
  kind: string;
  attemptNo: number;
  fleetId: string | null;
  layerKey: string | null;
  note: string | null;
};

/** One stored phase, on the orchestrator's clock. */
export type StoredPhase = Omit<RunnerPhase, "span"> & { attemptNo: number };

/** Everything a timeline is assembled from; kept in R2 with the log after the build ends. */
export type TimelineRecord = {
  buildId: string;
  status: string;
  createdMs: number;
  finishedMs: number | null;
  /** When the snapshot was taken (the end of a running build's last segment). */
  nowMs: number;
  failedLayer: string | null;
  failureExitCode: number | null;
  layers: { index: number; key: string; state: string }[];
  attempts: { attemptNo: number; fleetId: string; dispatchedMs: number | null; endedMs: number | null }[];
  marks: TimelineMark[];
  phases: StoredPhase[];
};

type Row = Record<string, SqlStorageValue>;

/** Read and write access to the timeline tables. */
export class BuildTimeline {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Records a mark. */
  mark(mark: TimelineMark): void {
    this.#sql.exec(
      "INSERT INTO timeline_marks (at_ms, kind, attempt_no, fleet_id, layer_key, note) VALUES (?, ?, ?, ?, ?, ?)",
      mark.atMs,
      mark.kind,
      mark.attemptNo,
      mark.fleetId,
      mark.layerKey,
      mark.note,
    );
  }

  /** Records what an accepted runner event adds to the timeline: `started` as a mark, `phases` as spans. */
  fromRunner(attemptNo: number, event: RunnerEvent, receivedMs: number): void {
    if (event.type === "started")
      this.mark({ atMs: receivedMs, kind: "runner_started", attemptNo, fleetId: null, layerKey: null, note: null });
    if (event.type !== "phases") return;
    // Receipt minus the runner's send time bounds the runner's clock offset from above (plus latency);
    // the smallest seen is the best estimate.
    this.#sql.exec(
      "INSERT INTO runner_clock (attempt_no, offset_ms) VALUES (?, ?) ON CONFLICT (attempt_no) DO UPDATE SET offset_ms = min(offset_ms, excluded.offset_ms)",
      attemptNo,
      receivedMs - event.sentAtMs,
    );
    const stored = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM phases WHERE attempt_no = ?", attemptNo).one().n;
    for (const p of event.phases) {
      if (stored >= MAX_SPANS_PER_ATTEMPT) break;
      // A span's end is final: a late "running" report of it never reopens it.
      this.#sql.exec(
        `INSERT INTO phases (attempt_no, span, layer_key, kind, step, total_steps, line, started_ms, ended_ms, outcome, exit_code)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (attempt_no, span) DO UPDATE SET ended_ms = coalesce(excluded.ended_ms, ended_ms),
           outcome = CASE WHEN excluded.ended_ms IS NULL THEN outcome ELSE excluded.outcome END, exit_code = coalesce(excluded.exit_code, exit_code)`,
        attemptNo,
        p.span,
        p.layerKey,
        p.kind,
        p.step,
        p.totalSteps,
        p.line,
        p.startedAtMs,
        p.endedAtMs,
        p.outcome,
        p.exitCode,
      );
    }
  }

  /** Every mark, oldest first. */
  marks(): TimelineMark[] {
    return this.#sql
      .exec<Row>("SELECT * FROM timeline_marks ORDER BY id")
      .toArray()
      .map((r) => ({
        atMs: r.at_ms as number,
        kind: r.kind as string,
        attemptNo: r.attempt_no as number,
        fleetId: r.fleet_id as string | null,
        layerKey: r.layer_key as string | null,
        note: r.note as string | null,
      }));
  }

  /** Every span, shifted onto the orchestrator's clock by its attempt's offset, in start order. */
  phases(): StoredPhase[] {
    return this.#sql
      .exec<Row>(
        `SELECT p.*, coalesce(c.offset_ms, 0) AS offset_ms FROM phases p LEFT JOIN runner_clock c ON c.attempt_no = p.attempt_no
         ORDER BY p.attempt_no, p.started_ms, p.span`,
      )
      .toArray()
      .map((r) => {
        const offset = r.offset_ms as number;
        return {
          attemptNo: r.attempt_no as number,
          layerKey: r.layer_key as string,
          kind: r.kind as RunnerPhase["kind"],
          step: r.step as number | null,
          totalSteps: r.total_steps as number | null,
          line: r.line as string | null,
          startedAtMs: (r.started_ms as number) + offset,
          endedAtMs: r.ended_ms === null ? null : (r.ended_ms as number) + offset,
          outcome: r.outcome as RunnerPhase["outcome"],
          exitCode: r.exit_code as number | null,
        };
      });
  }
}

/** Where the archived timeline record lives, next to the log archive's index. */
export function timelineArchiveKey(prefix: string): string {
  return `${prefix}timeline.json`;
}
