/**
 * `KilnClient`: the SDK's one transport to a Kiln server. No module-level state; every
 * setting comes from the constructor or, by default, `KILN_SERVER_URL` / `KILN_TOKEN`.
 * Retries connection errors, 408, 429 and 5xx with jittered exponential backoff, honouring
 * `Retry-After`; never retries 409 or other 4xx.
 *
 * @example
 * const client = new KilnClient({ serverUrl: "http://127.0.0.1:8787", token: process.env.KILN_TOKEN });
 * const image = await client.request("GET", ["v1", "images", "im-123"]);
 */
import type { DeletedImage } from "@kiln-build/protocol";
import { APIConnectionError, apiErrorFor, ExecutionError, InvalidError } from "./errors.ts";
import { profileDefaults } from "./profiles.ts";

/** Options of `new KilnClient`. */
export type KilnClientParams = {
  /** Base URL of the Kiln API (default `KILN_SERVER_URL`, else the `kiln login` profile's, else `http://127.0.0.1:8787`). */
  serverUrl?: string;
  /** API token (default `KILN_TOKEN`, else the `kiln login` profile's). */
  token?: string;
  /** The `fetch` to use; inject one for tests or proxies. */
  fetch?: typeof fetch;
  /** Retries after the first attempt (default 3). */
  maxRetries?: number;
  /** Per-attempt timeout in milliseconds (default 60 s). */
  timeoutMs?: number;
};

/** A request body `fetch` accepts. */
type RequestBody = NonNullable<RequestInit["body"]>;

/** Options of one request. */
export type RequestOptions = {
  query?: Record<string, string | number | undefined>;
  /** JSON body (serialised here) or a raw body with its own content type. */
  json?: unknown;
  body?: RequestBody;
  headers?: Record<string, string>;
  /** Sent as `Idempotency-Key`, so a retried POST is applied once. */
  idempotencyKey?: string;
  signal?: AbortSignal;
  /** Statuses that are returned as a Response instead of thrown (e.g. 404 for lookups). */
  accept?: number[];
  /** The body is a stream: sent half-duplex and never retried (it cannot be replayed). */
  duplex?: boolean;
  /**
   * A streamed body opened afresh for every attempt, so it can be retried; sent half-duplex,
   * its length given as `content-length` in `headers`. Instead of `body`.
   */
  stream?: () => ReadableStream<Uint8Array>;
  /** A built-in registry request (`/v2/...`): the token goes as Basic credentials, as `docker login` sends it. */
  registry?: boolean;
};

const RETRYABLE = (status: number) => status === 408 || status === 429 || status >= 500;
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 8_000;

/** A connection to one Kiln server with one token. */
export class KilnClient {
  readonly serverUrl: string;
  readonly #token: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #maxRetries: number;
  readonly #timeoutMs: number;

  constructor(params: KilnClientParams = {}) {
    // Parameters, then the environment, then the profile `kiln login` saved, then the local stack.
    const saved = params.serverUrl && params.token ? {} : profileDefaults();
    const url = params.serverUrl ?? process.env.KILN_SERVER_URL ?? saved.server ?? "http://127.0.0.1:8787";
    try {
      this.serverUrl = new URL(url).toString().replace(/\/$/, "");
    } catch {
      throw new InvalidError(`Invalid Kiln server URL: ${JSON.stringify(url)}. Set KILN_SERVER_URL to e.g. http://127.0.0.1:8787.`);
    }
    // A saved token goes only to the server it was saved for, never to one named elsewhere.
    this.#token =
      params.token ?? process.env.KILN_TOKEN ?? (saved.server && sameServer(saved.server, this.serverUrl) ? saved.token : undefined);
    this.#fetch = params.fetch ?? globalThis.fetch;
    this.#maxRetries = params.maxRetries ?? 3;
    this.#timeoutMs = params.timeoutMs ?? 60_000;
  }

  /** Whether a token is configured (requests without one get 401). */
  get hasToken(): boolean {
    return !!this.#token;
  }

  /**
   * Deletes image `imageId` and the tags pointing at it (`DELETE /v1/images/{id}`); layers other
   * images use stay, the registry GC reclaims the rest. A `ConflictError` (`image_building`)
   * while its build runs; a `NotFoundAPIError` once it is gone.
   */
  async deleteImage(imageId: string): Promise<DeletedImage> {
    return this.json<DeletedImage>("DELETE", ["v1", "images", imageId]);
  }

  /** Sends a request and parses the JSON answer; throws the `APIError` subclass for the status. */
  async json<T>(method: string, path: readonly string[], options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, path, options);
    return (await response.json()) as T;
  }

  /**
   * Sends a request with retries. Path segments are percent-encoded one by one, so ids can
   * never change the route. Returns the Response for 2xx and `accept`ed statuses.
   */
  async request(method: string, path: readonly string[], options: RequestOptions = {}): Promise<Response> {
    // Registry digests keep their colon (`sha256:...`), as OCI clients send them.
    const encode = options.registry ? (p: string) => encodeURIComponent(p).replace(/%3A/g, ":") : encodeURIComponent;
    const url = new URL(`${this.serverUrl}/${path.map(encode).join("/")}`);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: "application/json", "x-request-id": crypto.randomUUID(), ...options.headers };
    if (this.#token) headers.authorization = options.registry ? `Basic ${btoa(`kiln:${this.#token}`)}` : `Bearer ${this.#token}`;
    if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers["content-type"] = "application/json";
    }
    const replayable = options.stream !== undefined || isReplayable(body);
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      const sent = options.stream?.() ?? body;
      try {
        const signal = options.signal
          ? AbortSignal.any([options.signal, AbortSignal.timeout(this.#timeoutMs)])
          : AbortSignal.timeout(this.#timeoutMs);
        const init: RequestInit & { duplex?: "half" } = {
          method,
          headers,
          body: sent,
          signal,
          ...(options.duplex || options.stream ? { duplex: "half" } : {}),
          ...(isStreamed(sent) ? NO_BODY_COPY : {}),
        };
        response = await this.#fetch(url, init);
      } catch (error) {
        if (sent instanceof ReadableStream) await sent.cancel().catch(() => undefined);
        if (options.signal?.aborted) throw error;
        // A local file that changed while it was sent is the caller's error, not the connection's.
        const local = localBodyFailure(error);
        if (local) throw local;
        if (attempt >= this.#maxRetries || !replayable) {
          throw new APIConnectionError(
            `Could not reach the Kiln server at ${this.serverUrl}: ${(error as Error).message}. Is it running, and is the URL right?`,
            { cause: error },
          );
        }
        await sleep(backoffMs(attempt, null));
        continue;
      }
      if (response.ok || options.accept?.includes(response.status)) return response;
      if (RETRYABLE(response.status) && attempt < this.#maxRetries && replayable) {
        await response.body?.cancel();
        await sleep(backoffMs(attempt, response.headers.get("retry-after")));
        continue;
      }
      throw await errorFrom(response, headers["x-request-id"]!);
    }
  }
}

/**
 * Fetch (undici) clones a request to follow redirects, and cloning tees the body's stream: the
 * branch kept for a redirect holds every byte sent, so a streamed upload of a 50 MB file held
 * the whole file in memory. A request with no window that refuses redirects is not cloned.
 * Upload bodies are only ever sent to the Kiln API itself, which does not redirect them.
 */
const NO_BODY_COPY = { window: null, redirect: "error" } as const satisfies RequestInit;

/** Whether a body is read as a stream (a stream or a Blob): those are the bodies fetch would copy. */
function isStreamed(body: RequestBody | undefined): boolean {
  return body instanceof ReadableStream || body instanceof Blob;
}

/** The SDK's own error that failed a streamed body (fetch wraps it as its cause), if that is what failed the request. */
function localBodyFailure(error: unknown): ExecutionError | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof ExecutionError) return e;
  }
  return null;
}

/** Whether a body can be sent again (streams cannot). */
function isReplayable(body: RequestBody | undefined): boolean {
  return (
    body === undefined || typeof body === "string" || body instanceof Uint8Array || body instanceof ArrayBuffer || body instanceof Blob
  );
}

/** Delay before retry `attempt` (0-based): Retry-After when given (seconds or HTTP date), else jittered exponential. */
export function backoffMs(attempt: number, retryAfter: string | null, now = Date.now()): number {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - now;
    if (Number.isFinite(ms) && ms >= 0) return Math.min(ms, 60_000);
  }
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  // Full jitter: spreads synchronized clients (many SDK processes retrying one outage).
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

async function errorFrom(response: Response, sentRequestId: string) {
  const requestId = response.headers.get("x-request-id") ?? sentRequestId;
  let code = "http_error";
  let message = response.statusText || "Request failed";
  let details: unknown;
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string; details?: unknown } };
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
    details = body.error?.details;
  } catch {
    // Not our JSON error shape (a proxy's HTML page, say): keep the status text.
  }
  return apiErrorFor(response.status, code, message, requestId, details);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether two server URLs name the same origin and path (trailing slashes aside). */
export function sameServer(a: string, b: string): boolean {
  try {
    return new URL(a).toString().replace(/\/$/, "") === new URL(b).toString().replace(/\/$/, "");
  } catch {
    return false;
  }
}
