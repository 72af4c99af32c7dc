/**
 * The orchestrator's one error hierarchy and its one mapping to HTTP. Domain code throws
 * `ApiError`s (never `Response`s); `app.onError` turns them into
 * `{ error: { code, message, details? } }` with the right status. Anything else is a bug:
 * logged with the request id and answered 500.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { log } from "./log.ts";

/** An error with an HTTP status and a stable machine-readable code. */
export class ApiError extends Error {
  readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 410 | 412 | 413 | 415 | 416 | 422 | 429 | 503;
  readonly code: string;
  readonly details: unknown;
  readonly headers: Record<string, string>;

  constructor(status: ApiError["status"], code: string, message: string, details?: unknown, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.headers = headers;
  }
}

/** 400: the request is malformed or fails validation. */
export const badRequest = (message: string, details?: unknown) => new ApiError(400, "invalid_request", message, details);
/** 401: no or bad credentials. */
export const unauthorized = (message = "Missing or invalid API token. Pass `Authorization: Bearer kiln_...`.") =>
  new ApiError(401, "unauthorized", message, undefined, { "www-authenticate": 'Bearer realm="kiln"' });
/** 403: authenticated, but the token lacks the scope. */
export const forbidden = (message: string) => new ApiError(403, "forbidden", message);
/** 404: unknown, or belongs to another workspace (never 403, so existence does not leak). */
export const notFound = (what: string) => new ApiError(404, "not_found", `${what} not found.`);
/** 409: conflicts with the current state (a stale attempt, a duplicate). */
export const conflict = (code: string, message: string, details?: unknown) => new ApiError(409, code, message, details);
/** 413: the body is larger than this endpoint accepts. */
export const payloadTooLarge = (limitBytes: number) =>
  new ApiError(413, "payload_too_large", `Request body exceeds the limit of ${limitBytes} bytes.`, { limitBytes });

/**
 * 429: a request budget is spent (workers/rate-limit.ts). `Retry-After` says when to come back;
 * the SDK and the runner honour it.
 */
export const tooManyRequests = (scope: "client" | "token" | "runner", retryAfterSeconds: number) =>
  new ApiError(
    429,
    "rate_limited",
    `Too many requests for this ${scope === "token" ? "token" : scope === "runner" ? "runner address" : "client address"}. Retry after ${retryAfterSeconds} s.`,
    { scope, retryAfterSeconds },
    { "retry-after": String(retryAfterSeconds) },
  );

/** The one place errors become responses. */
export function errorResponse(error: unknown, c: Context): Response {
  if (error instanceof ApiError) {
    const body = {
      error: { code: error.code, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) },
    };
    return c.json(body, error.status, error.headers);
  }
  const shed = sheddingError(error);
  if (shed) return errorResponse(shed, c);
  if (error instanceof HTTPException) {
    const status = error.status;
    const code = status === 413 ? "payload_too_large" : status === 404 ? "not_found" : status < 500 ? "invalid_request" : "internal";
    return c.json({ error: { code, message: error.message || "Request failed." } }, status);
  }
  log("error", "unhandled error", { path: c.req.path, method: c.req.method, error: String((error as Error)?.stack ?? error) });
  return c.json({ error: { code: "internal", message: "Internal error. It has been logged; retry later." } }, 500);
}

/**
 * 503 + Retry-After for the platform's own transient failures: a Durable Object that is
 * overloaded (`error.overloaded`: too many queued requests, docs/scale.md) or reset
 * (`error.retryable`). These are load to shed, not bugs, so they never surface as 500; the SDK
 * and the runner retry them.
 */
export function sheddingError(error: unknown): ApiError | null {
  const flags = error as { overloaded?: unknown; retryable?: unknown } | null;
  if (flags?.overloaded === true)
    return new ApiError(503, "overloaded", "The server is overloaded; retry shortly.", undefined, { "retry-after": "1" });
  if (flags?.retryable === true)
    return new ApiError(503, "unavailable", "A transient failure interrupted the request; retry it.", undefined, { "retry-after": "1" });
  return null;
}
