/**
 * A build's log in its object's SQLite: runner chunks (sequence-numbered per attempt) and
 * the orchestrator's own `system` lines, each given a build-wide position `pos` that readers
 * use as their cursor. A chunk that arrives ahead of a gap is held back until the gap fills,
 * so readers see exactly the runner's order, and a cursor never skips or repeats a chunk.
 */

/** The log tables, part of the Build object's first migration. */
export const LOG_TABLES = `
  CREATE TABLE logs (pos INTEGER PRIMARY KEY AUTOINCREMENT, attempt_no INTEGER NOT NULL, seq INTEGER, layer_key TEXT, stream TEXT NOT NULL, data TEXT NOT NULL, at_ms INTEGER NOT NULL);
  CREATE TABLE log_pending (attempt_no INTEGER NOT NULL, seq INTEGER NOT NULL, layer_key TEXT, stream TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (attempt_no, seq));
  CREATE TABLE log_next (attempt_no INTEGER PRIMARY KEY, next_seq INTEGER NOT NULL);`;

/** One stored chunk as readers get it. */
export type LogChunk = {
  pos: number;
  attempt: number;
  layerKey: string | null;
  stream: "stdout" | "stderr" | "system";
  data: string;
  atMs: number;
};
/** One layer's stream output within a runner's chunk. */
export type IncomingEntry = { layerKey: string | null; stream: "stdout" | "stderr" | "system"; data: string };
/** A runner's chunk as received: a `log` event's one entry, or a `logs` event's several, under one sequence number. */
export type IncomingChunk = { seq: number; entries: readonly IncomingEntry[] };

/** Batched chunks held behind a gap keep their entries as JSON (Build object migration 4). */
export const LOG_PENDING_ENTRIES = "ALTER TABLE log_pending ADD COLUMN entries TEXT";

// Rows are capped at 2 MB; 256 Ki UTF-16 units are at most 768 KiB of UTF-8.
const PART_CHARS = 256 * 1024;
// How far ahead of a gap a runner may run before we stop buffering (it retries in order anyway).
const MAX_BUFFERED = 1024;

/** Read and write access to a build's log tables. */
export class BuildLogs {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Stores a runner chunk: `appended` (readers can see it), `buffered` (waits for a gap), `duplicate` or `overflow`. */
  append(attemptNo: number, chunk: IncomingChunk, nowMs: number): "appended" | "buffered" | "duplicate" | "overflow" {
    const next = this.#nextSeq(attemptNo);
    if (chunk.seq < next || this.#isBuffered(attemptNo, chunk.seq)) return "duplicate";
    if (chunk.seq > next) {
      if (chunk.seq - next > MAX_BUFFERED) return "overflow";
      this.#sql.exec(
        "INSERT INTO log_pending (attempt_no, seq, layer_key, stream, data, entries) VALUES (?, ?, NULL, 'stdout', '', ?)",
        attemptNo,
        chunk.seq,
        JSON.stringify(chunk.entries.map(({ layerKey, stream, data }) => ({ layerKey, stream, data }))),
      );
      return "buffered";
    }
    this.#insertEntries(attemptNo, chunk.seq, chunk.entries, nowMs);
    let seq = chunk.seq + 1;
    for (;;) {
      const held = this.#held(attemptNo, seq);
      if (!held) break;
      this.#insertEntries(attemptNo, seq, held, nowMs);
      this.#sql.exec("DELETE FROM log_pending WHERE attempt_no = ? AND seq = ?", attemptNo, seq);
      seq++;
    }
    this.#setNextSeq(attemptNo, seq);
    return "appended";
  }

  /** Appends an orchestrator line (dispatch, retry, cancel...) to the log. */
  system(attemptNo: number, text: string, nowMs: number): void {
    this.#sql.exec(
      "INSERT INTO logs (attempt_no, seq, layer_key, stream, data, at_ms) VALUES (?, NULL, NULL, 'system', ?, ?)",
      attemptNo,
      `[kiln] ${text}\n`,
      nowMs,
    );
  }

  /** Ends an attempt's log: chunks still held behind a gap are appended, with a note saying what is missing. */
  closeAttempt(attemptNo: number, nowMs: number): void {
    const seqs = this.#sql
      .exec<{ seq: number }>("SELECT seq FROM log_pending WHERE attempt_no = ? ORDER BY seq", attemptNo)
      .toArray()
      .map((r) => r.seq);
    let expected = this.#nextSeq(attemptNo);
    for (const seq of seqs) {
      if (seq > expected) this.system(attemptNo, `log chunks ${expected}..${seq - 1} of attempt ${attemptNo} never arrived`, nowMs);
      this.#insertEntries(attemptNo, seq, this.#held(attemptNo, seq) ?? [], nowMs);
      expected = seq + 1;
    }
    this.#sql.exec("DELETE FROM log_pending WHERE attempt_no = ?", attemptNo);
    this.#setNextSeq(attemptNo, expected);
  }

  /** Chunks after `cursor` (a `pos`), oldest first, up to `maxChunks` and about `maxBytes` of data (at least one chunk). */
  read(cursor: number, maxChunks: number, maxBytes: number): LogChunk[] {
    const rows = this.#sql.exec<{
      pos: number;
      attempt_no: number;
      layer_key: string | null;
      stream: LogChunk["stream"];
      data: string;
      at_ms: number;
    }>("SELECT pos, attempt_no, layer_key, stream, data, at_ms FROM logs WHERE pos > ? ORDER BY pos LIMIT ?", cursor, maxChunks);
    const out: LogChunk[] = [];
    let bytes = 0;
    for (const r of rows) {
      if (out.length > 0 && bytes + r.data.length > maxBytes) break;
      bytes += r.data.length;
      out.push({ pos: r.pos, attempt: r.attempt_no, layerKey: r.layer_key, stream: r.stream, data: r.data, atMs: r.at_ms });
    }
    return out;
  }

  /** The position of the newest chunk, 0 when the log is empty. */
  lastPos(): number {
    return this.#sql.exec<{ p: number | null }>("SELECT max(pos) AS p FROM logs").one().p ?? 0;
  }

  /** Deletes the stored chunks once archived (positions are never reused: AUTOINCREMENT). */
  clear(): void {
    this.#sql.exec("DELETE FROM logs");
    this.#sql.exec("DELETE FROM log_pending");
  }

  /** The entries of a chunk held behind a gap, or null. */
  #held(attemptNo: number, seq: number): IncomingEntry[] | null {
    const row = this.#sql
      .exec<{ layer_key: string | null; stream: IncomingEntry["stream"]; data: string; entries: string | null }>(
        "SELECT layer_key, stream, data, entries FROM log_pending WHERE attempt_no = ? AND seq = ?",
        attemptNo,
        seq,
      )
      .toArray()[0];
    if (!row) return null;
    return row.entries === null
      ? [{ layerKey: row.layer_key, stream: row.stream, data: row.data }]
      : (JSON.parse(row.entries) as IncomingEntry[]);
  }

  #insertEntries(attemptNo: number, seq: number, entries: readonly IncomingEntry[], nowMs: number): void {
    for (const entry of entries) this.#insert(attemptNo, seq, entry.layerKey, entry.stream, entry.data, nowMs);
  }

  #insert(attemptNo: number, seq: number | null, layerKey: string | null, stream: string, data: string, nowMs: number): void {
    // Oversized chunks become consecutive rows: readers see the same bytes in the same order.
    for (let at = 0; at === 0 || at < data.length; at += PART_CHARS) {
      this.#sql.exec(
        "INSERT INTO logs (attempt_no, seq, layer_key, stream, data, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
        attemptNo,
        seq,
        layerKey,
        stream,
        data.slice(at, at + PART_CHARS),
        nowMs,
      );
    }
  }

  #nextSeq(attemptNo: number): number {
    return (
      this.#sql.exec<{ next_seq: number }>("SELECT next_seq FROM log_next WHERE attempt_no = ?", attemptNo).toArray()[0]?.next_seq ?? 0
    );
  }

  #setNextSeq(attemptNo: number, next: number): void {
    this.#sql.exec(
      "INSERT INTO log_next (attempt_no, next_seq) VALUES (?, ?) ON CONFLICT (attempt_no) DO UPDATE SET next_seq = excluded.next_seq",
      attemptNo,
      next,
    );
  }

  #isBuffered(attemptNo: number, seq: number): boolean {
    return (
      this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM log_pending WHERE attempt_no = ? AND seq = ?", attemptNo, seq).one().n > 0
    );
  }
}
