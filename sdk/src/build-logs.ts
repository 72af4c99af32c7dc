/**
 * Following a build's log: a long-poll loop on a cursor, so a dropped connection resumes
 * exactly after the last chunk it saw (nothing lost, nothing repeated), and a display that
 * prefixes each line with its layer: a status line with the current layer on an interactive
 * terminal (status-line.ts), plain lines otherwise (CI logs, pipes, a TTY without a size),
 * nothing with `logs: false`.
 */
import { stripVTControlCharacters } from "node:util";
import type { LogChunk, LogPage } from "@kiln-build/protocol";
import { type Terminal, terminalFor } from "./cli/terminal.ts";
import type { KilnClient } from "./client.ts";
import { APIConnectionError, InternalServerError, RateLimitError } from "./errors.ts";
import { StatusLine } from "./status-line.ts";

/** One log chunk as the server returns it. */
export type { LogChunk };

/** How long one poll waits on the server for new chunks. */
const WAIT_SECONDS = 20;
/** Polls in a row that may fail (after the client's own retries) before following gives up: about 2 minutes. */
const MAX_FAILED_POLLS = 60;

/** A failure worth polling again after: the server is briefly away, restarting or overloaded. */
function isTransient(error: unknown): boolean {
  return error instanceof APIConnectionError || error instanceof InternalServerError || error instanceof RateLimitError;
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `request`, and again 2 s after each transient failure (the client already retried
 * it), up to {@link MAX_FAILED_POLLS} failures in a row: a server that is briefly away is
 * waited out.
 */
export async function patiently<T>(request: () => Promise<T>): Promise<T> {
  for (let failed = 0; ; ) {
    try {
      return await request();
    } catch (error) {
      if (!isTransient(error) || ++failed >= MAX_FAILED_POLLS) throw error;
      await sleep(2000);
    }
  }
}

/** Reads every chunk of a build's log from `cursor` until the build ends; resumes from the same cursor after an outage, so nothing is lost or repeated. */
export async function* followLog(client: KilnClient, buildId: string, cursor = 0): AsyncGenerator<LogChunk> {
  for (;;) {
    const page = await patiently(() =>
      client.json<LogPage>("GET", ["v1", "builds", buildId, "logs"], { query: { cursor, waitSeconds: WAIT_SECONDS } }),
    );
    for (const chunk of page.chunks) yield chunk;
    cursor = page.cursor;
    if (page.done) return;
  }
}

/**
 * Where build output goes: `live` redraws one status line in place under the log (a TTY),
 * `plain` prints each status as a line, `off` prints nothing.
 */
export type LogSink = {
  readonly mode: "off" | "plain" | "live";
  line(prefix: string, text: string, stream: LogChunk["stream"]): void;
  status(text: string): void;
  close(): void;
};

const DIM = "\x1b[2m";
const RESET = "\x1b[0m";

/**
 * The sink for `build({ logs })`: a status line and log lines on an interactive terminal,
 * plain lines otherwise, or nothing. `terminal` decides colour and interactivity (NO_COLOR,
 * FORCE_COLOR, the TTY and its width); without colour no escape sequence is written, not even
 * one the build's own output carried.
 */
export function logSink(
  enabled: boolean,
  out: NodeJS.WriteStream = process.stderr,
  terminal: Terminal = terminalFor(out, process.env),
): LogSink {
  if (!enabled) return { mode: "off", line() {}, status() {}, close() {} };
  const format = (prefix: string, text: string) =>
    terminal.color ? `${DIM}${prefix}${RESET} ${text}\n` : `${prefix} ${stripVTControlCharacters(text)}\n`;
  if (!terminal.interactive) {
    // Plain lines for logs, pipes and terminals without a size; a status is printed once, when it changes.
    let last = "";
    return {
      mode: "plain",
      line: (prefix, text) => out.write(format(prefix, text)),
      status: (text) => {
        if (text !== last) out.write(`${text}\n`);
        last = text;
      },
      close() {},
    };
  }
  const status = new StatusLine(out, { color: terminal.color, text: "Submitting" });
  return {
    mode: "live",
    line: (prefix, text) => status.print(format(prefix, text)),
    status: (text) => {
      status.text = text;
    },
    close: () => status.close(),
  };
}

/** Splits chunks into whole lines per (layer, stream); partial lines wait for their end. */
export class LineAssembler {
  readonly #pending = new Map<string, { layerKey: string | null; stream: LogChunk["stream"]; text: string }>();

  /** Feeds a chunk; returns the complete lines it finished. */
  push(chunk: LogChunk): string[] {
    const id = `${chunk.layerKey}:${chunk.stream}`;
    const lines = ((this.#pending.get(id)?.text ?? "") + chunk.data).split(/\r?\n/);
    this.#pending.set(id, { layerKey: chunk.layerKey, stream: chunk.stream, text: lines.pop() ?? "" });
    return lines;
  }

  /** Whatever is left without a final newline, once the log ended. */
  flush(): { layerKey: string | null; stream: LogChunk["stream"]; line: string }[] {
    const rest = [...this.#pending.values()]
      .filter((p) => p.text !== "")
      .map((p) => ({ layerKey: p.layerKey, stream: p.stream, line: p.text }));
    this.#pending.clear();
    return rest;
  }
}
