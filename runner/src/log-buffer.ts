/**
 * The FIFO between build output and the orchestrator. Bounded in memory: past
 * `memoryBytes` new records go to an append-only spill file (already masked, so no secret
 * reaches the disk) and come back in order once memory drains. Past `memoryBytes +
 * spillMaxBytes` the producer is told to pause (backpressure) instead of anything being
 * dropped.
 */
import { closeSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from "node:fs";

/** One piece of output from one stream of one layer's build. */
export type LogRecord = { layerKey: string | null; stream: "stdout" | "stderr" | "system"; data: string };

/** A contiguous run of records of the same layer and stream: one entry of a `logs` event. */
export type LogChunk = LogRecord;

/** Options of {@link LogBuffer}. */
export type LogBufferOptions = {
  /** Bytes kept in memory before spilling (default 8 MiB). */
  memoryBytes?: number;
  /** Where to spill; created on first use, removed by `dispose`. */
  spillPath: string;
  /** Bytes allowed in the spill file before producers must pause (default 1 GiB). */
  spillMaxBytes?: number;
};

// A record is cut to at most this many UTF-16 units: at most 3 UTF-8 bytes each, so every
// record (and so every chunk of one record) stays under the protocol's 1 MiB.
const MAX_RECORD_UNITS = 256 * 1024;

/** Bounded FIFO of masked log records with spill to disk and backpressure. */
export class LogBuffer {
  readonly #memoryLimit: number;
  readonly #highWater: number;
  readonly #spillPath: string;
  #memory: { record: LogRecord; bytes: number }[] = [];
  #head = 0;
  #memoryBytes = 0;
  #spillFd: number | null = null;
  #spillWrite = 0;
  #spillRead = 0;
  #spillBytes = 0;
  #spillRecords = 0;
  #drainWaiters: (() => void)[] = [];
  #dataWaiters: (() => void)[] = [];

  constructor(options: LogBufferOptions) {
    this.#memoryLimit = options.memoryBytes ?? 8 * 1024 * 1024;
    this.#highWater = this.#memoryLimit + (options.spillMaxBytes ?? 1024 * 1024 * 1024);
    this.#spillPath = options.spillPath;
  }

  /** Bytes of log data waiting (memory and spill). */
  get bufferedBytes(): number {
    return this.#memoryBytes + this.#spillBytes;
  }

  /** True when nothing is waiting. */
  get empty(): boolean {
    return this.#head === this.#memory.length && this.#spillRecords === 0;
  }

  /** True while records are being spilled to disk. */
  get spilling(): boolean {
    return this.#spillRecords > 0;
  }

  /** Appends a record (never drops it); returns false when the producer should pause until `waitForDrain`. */
  append(record: LogRecord): boolean {
    for (let start = 0; start < record.data.length; ) {
      let end = Math.min(record.data.length, start + MAX_RECORD_UNITS);
      // Never split a surrogate pair between two records.
      if (end < record.data.length && isHighSurrogate(record.data.charCodeAt(end - 1))) end--;
      this.#push({ ...record, data: record.data.slice(start, end) });
      start = end;
    }
    for (const wake of this.#dataWaiters.splice(0)) wake();
    return this.bufferedBytes < this.#highWater;
  }

  /** Resolves when the buffer is below half its limit again. */
  waitForDrain(): Promise<void> {
    if (this.bufferedBytes <= this.#highWater / 2) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Resolves when a record is appended (immediately if any is waiting). */
  waitForData(): Promise<void> {
    if (!this.empty) return Promise.resolve();
    return new Promise((resolve) => this.#dataWaiters.push(resolve));
  }

  /**
   * Removes and returns the oldest records within `maxBytes` (at least one), in order, with
   * runs of the same layer and stream joined into one entry: what one `logs` event carries.
   */
  takeBatch(maxBytes: number, maxEntries = Number.POSITIVE_INFINITY): LogChunk[] {
    const batch: LogChunk[] = [];
    let bytes = 0;
    for (;;) {
      if (this.#head === this.#memory.length) this.#refill();
      const next = this.#memory[this.#head];
      if (!next || (batch.length > 0 && bytes + next.bytes > maxBytes)) break;
      const last = batch.at(-1);
      if (last && last.layerKey === next.record.layerKey && last.stream === next.record.stream) {
        last.data += next.record.data;
      } else {
        if (batch.length === maxEntries) break;
        batch.push({ ...next.record });
      }
      bytes += next.bytes;
      this.#shift();
    }
    if (this.bufferedBytes <= this.#highWater / 2) for (const wake of this.#drainWaiters.splice(0)) wake();
    return batch;
  }

  /** Closes and deletes the spill file. */
  dispose(): void {
    if (this.#spillFd !== null) closeSync(this.#spillFd);
    this.#spillFd = null;
    rmSync(this.#spillPath, { force: true });
    for (const wake of this.#drainWaiters.splice(0)) wake();
  }

  #push(record: LogRecord): void {
    const bytes = Buffer.byteLength(record.data);
    // Once spilling, everything goes to the file until it is drained, to keep FIFO order.
    if (this.#spillRecords === 0 && this.#memoryBytes + bytes <= this.#memoryLimit) {
      this.#memory.push({ record, bytes });
      this.#memoryBytes += bytes;
      return;
    }
    this.#spillFd ??= openSync(this.#spillPath, "w+", 0o600);
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    writeSync(this.#spillFd, line, 0, line.length, this.#spillWrite);
    this.#spillWrite += line.length;
    this.#spillBytes += bytes;
    this.#spillRecords++;
  }

  #shift(): void {
    const entry = this.#memory[this.#head]!;
    this.#memory[this.#head] = undefined as never;
    this.#head++;
    this.#memoryBytes -= entry.bytes;
    if (this.#head === this.#memory.length) {
      this.#memory = [];
      this.#head = 0;
    }
  }

  /** Moves records from the spill file back to memory, up to half the memory limit. */
  #refill(): void {
    if (this.#spillRecords === 0 || this.#spillFd === null) return;
    let budget = Math.max(1, this.#memoryLimit / 2);
    let size = 1024 * 1024;
    while (budget > 0 && this.#spillRecords > 0) {
      const buffer = Buffer.allocUnsafe(size);
      const read = readSync(this.#spillFd, buffer, 0, size, this.#spillRead);
      let pos = 0;
      while (budget > 0 && this.#spillRecords > 0) {
        const newline = buffer.indexOf(10, pos);
        if (newline === -1 || newline >= read) break;
        const parsed = JSON.parse(buffer.subarray(pos, newline).toString("utf8")) as LogRecord;
        const bytes = Buffer.byteLength(parsed.data);
        pos = newline + 1;
        this.#spillRecords--;
        this.#spillBytes -= bytes;
        this.#memory.push({ record: parsed, bytes });
        this.#memoryBytes += bytes;
        budget -= bytes;
      }
      this.#spillRead += pos;
      // One record longer than the read window (JSON escaping inflates text): widen it.
      if (pos === 0) size *= 2;
    }
    if (this.#spillRecords === 0) {
      ftruncateSync(this.#spillFd, 0);
      this.#spillRead = 0;
      this.#spillWrite = 0;
    }
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
