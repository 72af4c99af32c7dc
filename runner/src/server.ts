/**
 * The dispatch endpoint. `POST /v1/jobs` verifies the Standard Webhooks signature against
 * the fleet secrets, refuses stale timestamps and replayed ids, refuses a job of another
 * protocol version (protocol-check.ts), validates the job with the shared protocol schema and
 * queues it, answering 202 at once (building happens later).
 * `GET /healthz` and `GET /v1/capabilities` (backend, GPUs, capacity) are unauthenticated
 * and reveal nothing about jobs. Errors use the orchestrator's shape `{ error: { code, message } }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type Job, JobSchema, verifyWebhook } from "@kiln-build/protocol";
import type { OfferResult } from "./job-queue.ts";
import type { Logger } from "./logger.ts";
import { orchestratorRelease, protocolRefusal } from "./protocol-check.ts";
import { ReplayCache } from "./replay-cache.ts";

/** What the server needs from the rest of the runner. */
export type DispatchHandler = {
  secrets: readonly string[];
  maxBodyBytes: number;
  logger: Logger;
  /** Queues a verified job; `requestId` is the orchestrator's `x-request-id`, for log lines. */
  dispatch(job: Job, context?: { requestId: string | null }): OfferResult;
  capabilities(): unknown;
  health(): unknown;
  replay?: ReplayCache;
};

/** An HTTP server (not yet listening) serving the dispatch endpoint. */
export function createDispatchServer(handler: DispatchHandler): Server {
  const replay = handler.replay ?? new ReplayCache();
  const server = createServer((req, res) => {
    route(handler, replay, req, res).catch((error: unknown) => {
      handler.logger.error("dispatch handler failed", { error: String(error) });
      if (!res.headersSent) send(res, 500, { error: { code: "internal", message: "internal runner error" } });
      else res.destroy();
    });
  });
  // The orchestrator expects an answer within 10 s; a slow client must not hold a socket longer.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  return server;
}

async function route(handler: DispatchHandler, replay: ReplayCache, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://runner");
  if (req.method === "GET" && url.pathname === "/healthz") return send(res, 200, handler.health());
  if (req.method === "GET" && url.pathname === "/v1/capabilities") return send(res, 200, handler.capabilities());
  if (url.pathname !== "/v1/jobs")
    return send(res, 404, { error: { code: "not_found", message: `no route for ${req.method} ${url.pathname}` } });
  if (req.method !== "POST") return send(res, 405, { error: { code: "method_not_allowed", message: "use POST /v1/jobs" } });

  // The orchestrator's request id (workers/log.ts), logged so both sides' lines can be joined.
  const header = req.headers["x-request-id"];
  const requestId = typeof header === "string" && /^[A-Za-z0-9._:-]{1,128}$/.test(header) ? header : null;
  const body = await readBody(req, handler.maxBodyBytes);
  if (body === null)
    return send(res, 413, {
      error: { code: "payload_too_large", message: `dispatch bodies are limited to ${handler.maxBodyBytes} bytes` },
    });

  let verified: ReturnType<typeof verifyWebhook> = { ok: false, error: "bad_signature" };
  for (const secret of handler.secrets) {
    verified = verifyWebhook(secret, req.headers as Record<string, string | undefined>, body);
    if (verified.ok) break;
  }
  if (!verified.ok) {
    const messages = {
      missing_headers: "the request lacks webhook-id, webhook-timestamp or webhook-signature",
      bad_signature: "the signature does not match any of this runner's fleet secrets",
      stale_timestamp: "the webhook-timestamp is more than 5 minutes from this runner's clock",
    };
    handler.logger.warn("refused a dispatch", { reason: verified.error, requestId });
    return send(res, 401, { error: { code: verified.error, message: messages[verified.error] } });
  }
  const seen = replay.check(verified.id);
  if (seen === "replay") return send(res, 409, { error: { code: "replayed", message: `webhook-id ${verified.id} was already delivered` } });
  if (seen === "full")
    return send(res, 503, { error: { code: "runner_busy", message: "too many recent dispatches; retry later" } }, { "retry-after": "30" });

  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return send(res, 400, { error: { code: "invalid_json", message: "the dispatch body is not JSON" } });
  }
  // The version before the schema: another protocol's job fails validation in ways that hide the cause.
  const refusal = protocolRefusal(json, orchestratorRelease(req.headers["user-agent"]));
  if (refusal !== null) {
    handler.logger.warn("refused a dispatch", { reason: "protocol_unsupported", message: refusal, requestId });
    return send(res, 400, { error: { code: "protocol_unsupported", message: refusal } });
  }
  const parsed = JobSchema.safeParse(json);
  if (!parsed.success) {
    const details = parsed.error.issues.slice(0, 20).map((i) => ({ path: i.path.join("."), message: i.message }));
    return send(res, 400, { error: { code: "invalid_job", message: "the dispatch is not a valid job", details } });
  }
  const result = handler.dispatch(parsed.data, { requestId });
  if (result === "full") {
    return send(res, 503, { error: { code: "runner_busy", message: "this runner's queue is full" } }, { "retry-after": "30" });
  }
  send(res, 202, { ok: true, jobId: parsed.data.jobId, attemptId: parsed.data.attemptId, duplicate: result === "duplicate" });
}

/** Reads the body as UTF-8, or null when it exceeds `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(tooLarge ? null : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}
