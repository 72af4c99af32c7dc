/**
 * Structured logs: one JSON object per line, with the request id of the work that produced it,
 * so a line in Workers Logs (`[observability]` in wrangler.toml), `wrangler tail` or the local
 * `wrangler dev` console can be joined with the SDK's `x-request-id`, the Durable Object, the
 * dispatch and the runner's own log.
 *
 * The request id travels implicitly inside one request (AsyncLocalStorage, set by
 * `requestContext`) and explicitly across boundaries that do not share it: a `requestId` field
 * on lines written by Durable Objects (passed to them as an RPC argument), the dispatch's
 * `x-request-id` header, the runner.
 *
 * @example
 * log("info", "build created", { buildId });   // {"level":"info","msg":"build created","requestId":"…","buildId":"…"}
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app-env.ts";

/** Severity of a log line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

type LogContext = { requestId: string | null; minLevel: LogLevel };

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const storage = new AsyncLocalStorage<LogContext>();
// A field whose name says it holds a credential is never written, whatever the caller passed.
const SECRET_FIELD = /(^|_|-)(authorization|cookie|password|secret|token|signature)s?$|[a-z](Secret|Token|Password|Signature)s?$/i;
const MAX_FIELD_CHARS = 2000;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id to use for an incoming `x-request-id` value: kept when well-formed, else a fresh one. */
export function requestIdFrom(header: string | undefined | null): string {
  // Anything else could forge log lines or fields downstream (newlines, quotes, megabytes).
  return header && REQUEST_ID.test(header) ? header : crypto.randomUUID();
}

/** The log level a `LOG_LEVEL` value names (default `info`). */
export function parseLogLevel(value: string | undefined): LogLevel {
  return value === "debug" || value === "info" || value === "warn" || value === "error" ? value : "info";
}

/** One log line as text (pure; `log` writes it). Secret-named fields are redacted, long values cut. */
export function formatLogLine(level: LogLevel, msg: string, fields: Record<string, unknown>, requestId: string | null): string {
  const line: Record<string, unknown> = { level, msg };
  if (requestId) line.requestId = requestId;
  for (const [key, value] of Object.entries(fields)) {
    if (key === "level" || key === "msg" || value === undefined) continue;
    if (SECRET_FIELD.test(key)) line[key] = "[redacted]";
    else if (typeof value === "string" && value.length > MAX_FIELD_CHARS) line[key] = `${value.slice(0, MAX_FIELD_CHARS)}…`;
    else if (value instanceof Error) line[key] = String(value.stack ?? value).slice(0, MAX_FIELD_CHARS);
    else line[key] = value;
  }
  return JSON.stringify(line);
}

/** Writes one JSON log line with the current request id (an explicit `requestId` field wins). */
export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  const context = storage.getStore();
  if (ORDER[level] < ORDER[context?.minLevel ?? "info"]) return;
  const requestId = typeof fields.requestId === "string" ? fields.requestId : (context?.requestId ?? null);
  const { requestId: _ignored, ...rest } = fields;
  const text = formatLogLine(level, msg, rest, requestId);
  // The console method sets the level Workers Logs records for the line.
  if (level === "error") console.error(text);
  else if (level === "warn") console.warn(text);
  else console.log(text);
}

/** The request id of the work in progress, or null outside a request. */
export function currentRequestId(): string | null {
  return storage.getStore()?.requestId ?? null;
}

/**
 * The first middleware: takes the SDK's `x-request-id` (or makes one), stores it as
 * `c.var.requestId`, echoes it on the response, and writes one access line per request
 * (`/healthz` only at debug level, so probes do not flood the log).
 */
export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  const requestId = requestIdFrom(c.req.header("x-request-id"));
  c.set("requestId", requestId);
  const startedMs = Date.now();
  await storage.run({ requestId, minLevel: parseLogLevel(c.env.LOG_LEVEL) }, async () => {
    await next();
    const status = c.res.status;
    const level: LogLevel =
      status >= 500 ? "error" : status === 429 || status === 503 ? "warn" : c.req.path === "/healthz" ? "debug" : "info";
    // Path only: query strings may carry digests or cursors nobody needs in the access log.
    log(level, "request", { method: c.req.method, path: c.req.path, status, durationMs: Date.now() - startedMs });
  });
  c.header("x-request-id", requestId);
});
