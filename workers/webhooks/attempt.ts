/**
 * One webhook delivery attempt: the URL checked again (a subscription written before a policy
 * change, or a deployment that no longer allows private addresses), the body signed with
 * Standard Webhooks, a POST that follows no redirect and gives up after 15 s, and at most
 * 4 KiB of the answer read. Never throws: every failure is an outcome for the delivery log.
 */
import { KILN_VERSION, signWebhook } from "@kiln-build/protocol";
import { isDelivered } from "./schedule.ts";
import { checkWebhookUrl } from "./url-policy.ts";

/** How long a receiver may take to answer. */
export const ATTEMPT_TIMEOUT_MS = 15_000;

// What the delivery log keeps of a receiver's answer, and the most read of it.
const MAX_BODY_READ_BYTES = 4096;
const MAX_ERROR_CHARS = 300;

/** What one attempt came to. */
export type AttemptOutcome = { statusCode: number | null; error: string | null; durationMs: number };

/** A message to deliver: its id (the `webhook-id`, the same on every attempt) and its JSON body. */
export type OutgoingMessage = { id: string; body: string };

/** POSTs `message` to `target`, signed with its secret. */
export async function attemptDelivery(
  target: { url: string; secret: string },
  message: OutgoingMessage,
  options: { allowPrivate: boolean; timeoutMs?: number; now?: () => number },
): Promise<AttemptOutcome> {
  const now = options.now ?? Date.now;
  const started = now();
  const done = (statusCode: number | null, error: string | null) => ({ statusCode, error, durationMs: Math.max(0, now() - started) });
  const verdict = checkWebhookUrl(target.url, { allowPrivate: options.allowPrivate });
  if (!verdict.ok) return done(null, verdict.reason);
  let response: Response;
  try {
    response = await fetch(verdict.url.href, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": `kiln-webhooks/${KILN_VERSION}`,
        ...signWebhook(target.secret, message.id, message.body, new Date(now())),
      },
      body: message.body,
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs ?? ATTEMPT_TIMEOUT_MS),
    });
  } catch (error) {
    const name = (error as Error)?.name;
    if (name === "TimeoutError" || name === "AbortError")
      return done(null, `No answer within ${Math.round((options.timeoutMs ?? ATTEMPT_TIMEOUT_MS) / 1000)} s.`);
    return done(null, `The request failed: ${clip(String((error as Error)?.message ?? error))}`);
  }
  const text = await readCapped(response);
  if (isDelivered(response.status)) return done(response.status, null);
  if (response.status >= 300 && response.status < 400) {
    const location = response.headers.get("location");
    return done(response.status, `Redirects are not followed${location ? ` (to ${clip(location)})` : ""}.`);
  }
  return done(response.status, `The receiver answered ${response.status}${text ? `: ${clip(text)}` : "."}`);
}

// Reads at most MAX_BODY_READ_BYTES of the body and drops the rest unread.
async function readCapped(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_BODY_READ_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body cut short says nothing more about the delivery than its status.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const joined = new Uint8Array(Math.min(size, MAX_BODY_READ_BYTES));
  let offset = 0;
  for (const c of chunks) {
    const part = c.subarray(0, joined.byteLength - offset);
    joined.set(part, offset);
    offset += part.byteLength;
    if (offset >= joined.byteLength) break;
  }
  return new TextDecoder().decode(joined).trim();
}

function clip(text: string): string {
  const oneLine = text.replace(/\s+/g, " ");
  return oneLine.length > MAX_ERROR_CHARS ? `${oneLine.slice(0, MAX_ERROR_CHARS)}…` : oneLine;
}
