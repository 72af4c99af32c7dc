/**
 * Signed dispatch of a job to a runner fleet: one Standard Webhooks POST, answered within
 * 10 s. Each delivery has a fresh `webhook-id` (the runner refuses a replayed id); the job's
 * `attemptId` is what identifies the attempt, so a re-delivered attempt is recognised and not
 * built twice (docs/protocol.md). Any 2xx is an acceptance; everything else (3xx included:
 * redirects are not followed, as the spec advises) is a refusal the build retries elsewhere.
 */
import type { Job } from "@kiln-build/protocol";
import { signWebhook } from "@kiln-build/protocol";
import { currentRequestId } from "./log.ts";

/** How long a fleet has to answer. */
export const DISPATCH_TIMEOUT_MS = 10_000;

/** The outcome of one dispatch. Never carries the job or the secret. */
export type DispatchResult =
  | { ok: true; status: number }
  | { ok: false; error: { code: "refused" | "unreachable" | "timeout"; status: number | null; message: string } };

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
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", "user-agent": "kiln-orchestrator/1" },
      body,
      redirect: "manual",
      signal: abort.signal,
    });
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
  // Only the status matters; release the connection.
  await response.body?.cancel().catch(() => undefined);
  if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status };
  return {
    ok: false,
    error: { code: "refused", status: response.status, message: `The fleet refused the job with HTTP ${response.status}.` },
  };
}
