/**
 * The orchestrator's one error hierarchy and its one mapping to HTTP. Domain code throws
 * `ApiError`s (never `Response`s); `app.onError` turns them into
 * `{ error: { code, message, details? } }` with the right status. Anything else is a bug:
 * logged with the request id and answered 500.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { log } from "./log.ts";
import { errorPageHeaders, prefersHtml, renderErrorPage } from "./status-page/error-page.ts";

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

/**
 * The one place errors become responses. Every body is bounded (`boundedMessage`, `boundedDetails`).
 * A request that prefers HTML (a browser opening a page or an API URL) gets the same status,
 * headers, code and message as an HTML page (status-page/error-page.ts); everything else gets
 * the JSON body. Both vary on Accept.
 */
export async function errorResponse(error: unknown, c: Context): Promise<Response> {
  const response = jsonErrorResponse(error, c);
  response.headers.append("vary", "accept");
  if (!prefersHtml(c.req.header("accept"))) return response;
  const body = (await response.json()) as { error: { code: string; message: string } };
  const page = renderErrorPage({ status: response.status, ...body.error, requestId: requestIdOf(c) });
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(await errorPageHeaders(page))) headers.set(name, value);
  return new Response(page, { status: response.status, headers });
}

function requestIdOf(c: Context): string | undefined {
  const id: unknown = c.get("requestId");
  return typeof id === "string" ? id : undefined;
}

function jsonErrorResponse(error: unknown, c: Context): Response {
  if (error instanceof ApiError) {
    const details = error.details === undefined ? {} : { details: boundedDetails(error.details) };
    const body = { error: { code: error.code, message: boundedMessage(error.message), ...details } };
    return c.json(body, error.status, error.headers);
  }
  const shed = sheddingError(error);
  if (shed) return jsonErrorResponse(shed, c);
  if (error instanceof HTTPException) {
    const status = error.status;
    const code = status === 413 ? "payload_too_large" : status === 404 ? "not_found" : status < 500 ? "invalid_request" : "internal";
    return c.json({ error: { code, message: boundedMessage(error.message || "Request failed.") } }, status);
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

/*
 * Error bodies are bounded, whoever asks: a request can make a validator produce one issue per
 * array element or unknown key, and messages can quote what the request sent. Unauthenticated
 * callers (runner events before the signature, the registry, public pages) must never turn a
 * small request into a large answer, so every body stays within a few KiB.
 */

/** Longest error message sent (UTF-16 units); longer ones are cut with an ellipsis. */
export const MAX_MESSAGE_CHARS = 512;
/** Most validation issues an error body lists; the rest are counted in a last `truncated` entry. */
export const MAX_ISSUES = 20;
/** Budget of the serialised `details` (UTF-8 bytes), marker included. */
export const MAX_DETAILS_BYTES = 3072;
const MAX_ISSUE_MESSAGE_CHARS = 200;
const MAX_PATH_SEGMENTS = 8;
const MAX_SEGMENT_CHARS = 40;

/** `text` cut to `max` characters (never inside a surrogate pair), with an ellipsis when cut. */
export function truncateText(text: string, max = MAX_MESSAGE_CHARS): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}\u2026`;
}

/** An error message as sent: at most `MAX_MESSAGE_CHARS`. */
export function boundedMessage(message: string): string {
  return truncateText(message);
}

/**
 * `details` as sent. An array of `{ path, message }` is a list of validation issues: each is reduced to
 * `{ code, path, message }` (cut), at most `MAX_ISSUES` are kept within `MAX_DETAILS_BYTES`,
 * and a last `{ code: "truncated" }` entry says how many were dropped. Anything else is kept
 * when it fits the budget, else its strings, arrays and objects are cut.
 */
export function boundedDetails(details: unknown): unknown {
  if (Array.isArray(details) && details.every(isIssue)) return boundedIssues(details);
  if (jsonLength(details) <= MAX_DETAILS_BYTES) return details;
  const cut = shrink(details, 0);
  return jsonLength(cut) <= MAX_DETAILS_BYTES ? cut : { truncated: true };
}

/** Validation issues bounded as `boundedDetails` describes. */
export function boundedIssues(issues: readonly unknown[]): unknown[] {
  const kept: unknown[] = [];
  let used = 2;
  for (const issue of issues) {
    if (kept.length >= MAX_ISSUES) break;
    const small = boundedIssue(issue);
    const size = jsonLength(small) + 1;
    // Room is kept for the marker (about 120 characters).
    if (used + size > MAX_DETAILS_BYTES - 160) break;
    kept.push(small);
    used += size;
  }
  const dropped = issues.length - kept.length;
  if (dropped === 0) return kept;
  return [
    ...kept,
    { code: "truncated", path: [], message: `${dropped} more issue${dropped === 1 ? " was" : "s were"} not listed; fix these and retry.` },
  ];
}

function isIssue(value: unknown): boolean {
  const issue = value as { path?: unknown; message?: unknown } | null;
  return typeof issue === "object" && issue !== null && typeof issue.message === "string" && Array.isArray(issue.path);
}

function boundedIssue(issue: unknown): { code: string; path: (string | number)[]; message: string } {
  const raw = (typeof issue === "object" && issue !== null ? issue : {}) as { code?: unknown; path?: unknown; message?: unknown };
  const path = Array.isArray(raw.path) ? raw.path : [];
  const segments = path.slice(0, MAX_PATH_SEGMENTS).map((p) => (typeof p === "number" ? p : truncateText(String(p), MAX_SEGMENT_CHARS)));
  if (path.length > MAX_PATH_SEGMENTS) segments.push("\u2026");
  return {
    code: truncateText(typeof raw.code === "string" ? raw.code : "invalid", MAX_SEGMENT_CHARS),
    path: segments,
    message: truncateText(typeof raw.message === "string" ? raw.message : String(issue), MAX_ISSUE_MESSAGE_CHARS),
  };
}

function shrink(value: unknown, depth: number): unknown {
  if (typeof value === "string") return truncateText(value, 128);
  if (value === null || typeof value !== "object") return value;
  if (depth >= 3) return "\u2026";
  if (Array.isArray(value)) {
    const kept = value.slice(0, 16).map((v) => shrink(v, depth + 1));
    return value.length > 16 ? [...kept, `\u2026 ${value.length - 16} more`] : kept;
  }
  const entries = Object.entries(value).slice(0, 16);
  return Object.fromEntries(entries.map(([k, v]) => [truncateText(k, 64), shrink(v, depth + 1)]));
}

// UTF-8 bytes of the value's JSON: the budget is in bytes on the wire, whatever the script.
function jsonLength(value: unknown): number {
  try {
    return new TextEncoder().encode(JSON.stringify(value) ?? "").byteLength;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
