/**
 * Signed dispatch of a job to a runner fleet: one Standard Webhooks POST, answered within
 * 10 s. Each delivery has a fresh `webhook-id` (the runner refuses a replayed id); the job's
 * `attemptId` is what identifies the attempt, so a re-delivered attempt is recognised and not
 * built twice (docs/protocol.md). Any 2xx is an acceptance; everything else (3xx included:
 * redirects are not followed, as the spec advises) is a refusal the build retries elsewhere,
 * except a 400 `protocol_unsupported`: the runner does not speak the job's protocol version,
 * and its message (what to upgrade) is passed on for the build's failure.
 */
import type { Job } from "@kiln-build/protocol";
import { KILN_VERSION, signWebhook } from "@kiln-build/protocol";
import { currentRequestId } from "./log.ts";

/** How long a fleet has to answer. */
export const DISPATCH_TIMEOUT_MS = 10_000;

// A runner's error body is small; a longer one is not a refusal this module reads.
const MAX_REFUSAL_BYTES = 16 * 1024;
// The runner's message becomes the build's failure message; it is the runner's text, so it is capped.
const MAX_REFUSAL_MESSAGE = 2_000;

/** The outcome of one dispatch. Never carries the job or the secret. */
export type DispatchResult =
  | { ok: true; status: number }
  | {
      ok: false;
      error: { code: "refused" | "unreachable" | "timeout" | "protocol_unsupported"; status: number | null; message: string };
    };

/** POSTs `job` to `url`, signed with the fleet's `secret`. Never throws for network or HTTP failures. */
export async function dispatchJob(
  url: string,
  secret: string,
  job: Job,
  options: { timeoutMs?: number; now?: Date; requestId?: string | null; webhookId?: string } = {},
): Promise<DispatchResult> {
  const body = JSON.stringify(job);
  const webhookId = options.webhookId ?? `msg_${crypto.randomUUID().replaceAll("-", "")}`;
  const headers: Record<string, string> = { ...signWebhook(secret, webhookId, body, options.now) };
  // The request that caused the build, so the runner's log lines join the Worker's (workers/log.ts).
  const requestId = options.requestId ?? currentRequestId();
  if (requestId) headers["x-request-id"] = requestId;
  const timeoutMs = options.timeoutMs ?? DISPATCH_TIMEOUT_MS;
  // Not AbortSignal.timeout(): its timer outlives the request and keeps a Durable Object busy for the full 10 s.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new DOMException("dispatch timed out", "TimeoutError")), timeoutMs);
  let response: Response;
  let unsupported: string | null = null;
  try {
    response = await fetch(url, {
      method: "POST",
      // The release, so a runner that refuses the job's protocol version can name the runner release to install.
      headers: { ...headers, "content-type": "application/json", "user-agent": `kiln-orchestrator/${KILN_VERSION}` },
      body,
      redirect: "manual",
      signal: abort.signal,
    });
    // Read under the same timeout: a runner that sends headers and then stalls must not hold the dispatch.
    if (response.status === 400) unsupported = await protocolRefusal(response);
  } catch (error) {
    const name = (error as Error)?.name;
    if (abort.signal.aborted || name === "TimeoutError" || name === "AbortError") {
      return { ok: false, error: { code: "timeout", status: null, message: `The fleet did not answer within ${timeoutMs / 1000} s.` } };
    }
    return {
      ok: false,
      error: {
        code: "unreachable",
        status: null,
        message: `The fleet could not be reached: ${String((error as Error)?.message ?? error).slice(0, 200)}`,
      },
    };
  } finally {
    clearTimeout(timer);
  }
  // Otherwise only the status matters; release the connection.
  if (response.status !== 400) await response.body?.cancel().catch(() => undefined);
  if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status };
  if (unsupported !== null) return { ok: false, error: { code: "protocol_unsupported", status: 400, message: unsupported } };
  return {
    ok: false,
    error: { code: "refused", status: response.status, message: `The fleet refused the job with HTTP ${response.status}.` },
  };
}

/**
 * The runner's message when a 400 is `{ error: { code: "protocol_unsupported", message } }`,
 * else null. Never throws: an unreadable or oversized body is an ordinary refusal.
 */
async function protocolRefusal(response: Response): Promise<string | null> {
  const reader = response.body?.getReader();
  if (!reader) return null;
  try {
    const decoder = new TextDecoder();
    let text = "";
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_REFUSAL_BYTES) {
        await reader.cancel();
        return null;
      }
      text += decoder.decode(value, { stream: true });
    }
    text += decoder.decode();
    const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (error?.code !== "protocol_unsupported" || typeof error.message !== "string" || error.message === "") return null;
    return error.message.slice(0, MAX_REFUSAL_MESSAGE);
  } catch {
    await reader.cancel().catch(() => undefined);
    return null;
  }
}
