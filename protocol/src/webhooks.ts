/**
 * Standard Webhooks signing and verification, shared by the orchestrator (dispatch out,
 * runner events in) and the runner (dispatch in, events out). Pure: runs on workerd and
 * Node. Uses the `standardwebhooks` package (pure JavaScript, constant-time comparison,
 * ±5 minute timestamp tolerance, as the spec requires).
 */
import { Webhook, WebhookVerificationError } from "standardwebhooks";

/** The three headers a signed request carries. */
export type WebhookHeaders = { "webhook-id": string; "webhook-timestamp": string; "webhook-signature": string };

/** A signing secret in the spec's format: `whsec_` followed by base64 of 24-64 random bytes. */
export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

/** Signs `body` for delivery; `id` must be unique per message (it is the replay key). */
export function signWebhook(secret: string, id: string, body: string, now = new Date()): WebhookHeaders {
  const signature = new Webhook(secret).sign(id, now, body);
  return { "webhook-id": id, "webhook-timestamp": String(Math.floor(now.getTime() / 1000)), "webhook-signature": signature };
}

/** Why a signed request was refused. */
export type WebhookRejection = "missing_headers" | "bad_signature" | "stale_timestamp";

/**
 * Verifies a request's signature and timestamp. Returns the message id on success; never
 * throws for bad input. Replay detection (an id seen before) is the caller's job.
 */
export function verifyWebhook(
  secret: string,
  headers: Headers | Record<string, string | undefined>,
  body: string,
): { ok: true; id: string } | { ok: false; error: WebhookRejection } {
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : headers[name]) ?? undefined;
  const id = get("webhook-id");
  const timestamp = get("webhook-timestamp");
  const signature = get("webhook-signature");
  if (!id || !timestamp || !signature) return { ok: false, error: "missing_headers" };
  try {
    new Webhook(secret).verify(body, { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature });
    return { ok: true, id };
  } catch (error) {
    if (error instanceof WebhookVerificationError && /timestamp/i.test(error.message)) return { ok: false, error: "stale_timestamp" };
    return { ok: false, error: "bad_signature" };
  }
}
