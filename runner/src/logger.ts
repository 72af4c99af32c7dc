/**
 * The runner's own diagnostic log: one JSON object per line on stderr, so journald and log
 * shippers can parse it. Build output never goes here (it is streamed to the orchestrator),
 * and callers never pass secret values in `fields`.
 */

/** Severity of a runner log line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Structured logger used by every runner module. */
export type Logger = Record<LogLevel, (message: string, fields?: Record<string, unknown>) => void>;

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A logger writing JSON lines at or above `level` to `write` (default: stderr). */
export function createLogger(level: LogLevel = "info", write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const emit =
    (at: LogLevel) =>
    (message: string, fields: Record<string, unknown> = {}) => {
      if (ORDER[at] < ORDER[level]) return;
      write(`${JSON.stringify({ time: new Date().toISOString(), level: at, msg: message, ...fields })}\n`);
    };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** A logger that discards everything (tests, benchmarks). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
