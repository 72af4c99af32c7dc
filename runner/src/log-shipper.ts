/**
 * Streams a job's build output to the orchestrator as sequence-numbered `logs` events:
 * decoded as UTF-8, masked, buffered in a bounded {@link LogBuffer}, and sent about once a
 * second, all that is buffered in one event of at most 1 MiB whatever layers and streams it
 * mixes (one event per round, not one per run of a stream). An event keeps its sequence
 * number until it is delivered, so an outage delays the log but never loses or reorders a line.
 */
import { MAX_LOG_ENTRIES, MAX_LOG_TAIL_LINE_CHARS, MAX_LOG_TAIL_LINES } from "@kiln-build/protocol";
import { type DeliveryOutcome, type EventBody, sleep } from "./event-client.ts";
import type { LogBuffer, LogRecord } from "./log-buffer.ts";
import type { Logger } from "./logger.ts";
import type { SecretMasker } from "./secret-mask.ts";

/** Where a process writes its output; `false` from `write` means pause until `waitForDrain`. */
export interface OutputSink {
  write(data: Buffer): boolean;
  waitForDrain(): Promise<void>;
  end(): void;
}

/** Options of {@link LogShipper}. */
export type LogShipperOptions = {
  buffer: LogBuffer;
  masker: SecretMasker;
  /** Delivers one event with retries; `giveUp` aborts when the job's final flush times out. */
  deliver: (body: EventBody, giveUp: AbortSignal) => Promise<DeliveryOutcome>;
  logger: Logger;
  flushMs?: number;
  chunkBytes?: number;
  /** Lines kept for the `failed` event's `logTail` (default 100). */
  tailLines?: number;
};

/** One job's log stream. */
export class LogShipper {
  readonly #options: LogShipperOptions;
  readonly #flushMs: number;
  readonly #chunkBytes: number;
  readonly #giveUp = new AbortController();
  readonly #tail: string[] = [];
  #seq = 0;
  #lastRound = 0;
  #closing = false;
  #stopped = false;
  #wake: (() => void) | null = null;
  #pump: Promise<void> | null = null;

  constructor(options: LogShipperOptions) {
    this.#options = options;
    this.#flushMs = options.flushMs ?? 1_000;
    this.#chunkBytes = options.chunkBytes ?? 1024 * 1024;
  }

  /** Number of chunks delivered so far (the next sequence number). */
  get sequence(): number {
    return this.#seq;
  }

  /** Starts the sending loop. */
  start(): void {
    this.#pump ??= this.#run().catch((error: unknown) => {
      this.#options.logger.error("log shipping stopped", { error: String(error) });
    });
  }

  /** A sink for one output stream of one layer's build. */
  sink(layerKey: string | null, stream: "stdout" | "stderr"): OutputSink {
    const decoder = new TextDecoder("utf-8");
    const masking = this.#options.masker.stream();
    let partial = "";
    const emit = (text: string): boolean => {
      if (text === "") return true;
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) this.#remember(line);
      return this.#append({ layerKey, stream, data: text });
    };
    return {
      write: (data) => emit(masking.push(decoder.decode(data, { stream: true }))),
      waitForDrain: () => this.#options.buffer.waitForDrain(),
      end: () => {
        emit(masking.push(decoder.decode()) + masking.end());
        if (partial !== "") this.#remember(partial);
        partial = "";
      },
    };
  }

  /** A runner message for the build log (e.g. "pushing ..."), masked like build output. */
  system(layerKey: string | null, text: string): void {
    const line = this.#options.masker.mask(text.endsWith("\n") ? text : `${text}\n`);
    this.#append({ layerKey, stream: "system", data: line });
  }

  /** The last lines of output (masked), for the `failed` event. */
  tail(): string[] {
    return [...this.#tail];
  }

  /**
   * Sends everything still buffered and stops. Waits at most `timeoutMs` for an unreachable
   * orchestrator; returns how many bytes could not be delivered (0 normally).
   */
  async close(timeoutMs: number): Promise<number> {
    this.#closing = true;
    this.start();
    this.#wake?.();
    const timer = setTimeout(() => this.#giveUp.abort(), timeoutMs);
    try {
      await this.#pump;
    } finally {
      clearTimeout(timer);
    }
    const undelivered = this.#options.buffer.bufferedBytes;
    this.#options.buffer.dispose();
    return undelivered;
  }

  /** Stops sending at once (the attempt was fenced: its events are refused anyway). */
  stop(): void {
    this.#stopped = true;
    this.#giveUp.abort();
    this.#wake?.();
  }

  #append(record: LogRecord): boolean {
    const ok = this.#options.buffer.append(record);
    if (this.#options.buffer.bufferedBytes >= this.#chunkBytes) this.#wake?.();
    return ok;
  }

  #remember(line: string): void {
    this.#tail.push(line.length > MAX_LOG_TAIL_LINE_CHARS ? line.slice(0, MAX_LOG_TAIL_LINE_CHARS) : line);
    if (this.#tail.length > (this.#options.tailLines ?? MAX_LOG_TAIL_LINES)) this.#tail.shift();
  }

  async #run(): Promise<void> {
    const buffer = this.#options.buffer;
    while (!this.#stopped) {
      if (buffer.empty) {
        if (this.#closing) return;
        await Promise.race([buffer.waitForData(), this.#nap()]);
        continue;
      }
      const due = this.#lastRound + this.#flushMs - Date.now();
      if (due > 0 && !this.#closing && buffer.bufferedBytes < this.#chunkBytes) {
        await Promise.race([sleep(due), this.#nap()]);
        continue;
      }
      this.#lastRound = Date.now();
      // One round sends everything buffered, so a backlog drains back-to-back.
      while (!buffer.empty && !this.#stopped) {
        const entries = buffer.takeBatch(this.#chunkBytes, MAX_LOG_ENTRIES);
        const outcome = await this.#options.deliver({ type: "logs", seq: this.#seq, entries }, this.#giveUp.signal);
        if (outcome === "gave_up" || outcome === "fenced") {
          if (outcome === "gave_up") for (const entry of entries) buffer.append(entry);
          return;
        }
        // A chunk the orchestrator refused (4xx) is not resent; its number stays used.
        this.#seq++;
      }
    }
  }

  /** A promise resolved by the next `#wake()`. */
  #nap(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = null;
        resolve();
      };
    });
  }
}
