/**
 * Probing a runner fleet from the Worker (for `kiln doctor` via `GET /v1/admin/status`):
 * is it reachable, and does it accept our signature?
 *
 * Reachability is `GET /healthz` on the dispatch URL's origin (the reference runner serves it).
 * Signing is checked without dispatching anything: a POST to the dispatch URL, signed with the
 * fleet's secret exactly like a job, whose body is JSON but not a job. The reference runner
 * verifies the signature before it parses the body (runner/src/server.ts), so `400
 * invalid_job` proves the signature was accepted, `401 bad_signature` that the secrets differ
 * and `401 stale_timestamp` that the clocks are more than 5 minutes apart. Nothing is queued.
 */
import { signWebhook } from "@kiln-build/protocol";

/** How long each probe waits for the fleet. */
export const PROBE_TIMEOUT_MS = 5_000;

/** One probe's outcome. `code` is machine-readable; `message` says what it means for the user. */
export type ProbeResult = { ok: boolean; code: string; status: number | null; message: string; durationMs: number };

/** The outcome of a signed probe from the fleet's answer (pure). */
export function interpretSignedProbe(status: number, errorCode: string | null): Omit<ProbeResult, "durationMs"> {
  if (status === 400 && (errorCode === "invalid_job" || errorCode === "invalid_json")) {
    return {
      ok: true,
      code: "signature_accepted",
      status,
      message: "The fleet verified our signature (and refused the probe body, as expected).",
    };
  }
  if (status === 401 && errorCode === "stale_timestamp") {
    return {
      ok: false,
      code: "clock_skew",
      status,
      message: "The fleet's clock is more than 5 minutes from the Worker's. Sync the runner machine's clock (NTP).",
    };
  }
  if (status === 401) {
    return {
      ok: false,
      code: "signature_refused",
      status,
      message:
        "The fleet refused the signature: its webhook secret differs from the fleet's signing secret. Restart the runner with the secret `kiln fleet add` printed, or rotate it (PATCH /v1/fleets/<id> with rotateSigningSecret).",
    };
  }
  if (status >= 200 && status < 300) {
    return {
      ok: false,
      code: "probe_accepted",
      status,
      message: "The fleet accepted a body that is not a job; it may not be a Kiln runner.",
    };
  }
  return {
    ok: false,
    code: "unexpected_answer",
    status,
    message: `The fleet answered HTTP ${status}${errorCode ? ` (${errorCode})` : ""} to a signed probe; expected 400 invalid_job from a Kiln runner.`,
  };
}

/** `GET <origin>/healthz` of the fleet's dispatch URL. */
export async function probeReachable(dispatchUrl: string): Promise<ProbeResult> {
  const started = Date.now();
  const url = new URL("/healthz", dispatchUrl).toString();
  const answer = await timedFetch(url, { method: "GET" });
  const durationMs = Date.now() - started;
  if ("error" in answer) return { ok: false, code: "unreachable", status: null, message: `GET ${url} failed: ${answer.error}`, durationMs };
  await answer.response.body?.cancel();
  const ok = answer.response.status === 200;
  return {
    ok,
    code: ok ? "reachable" : "unhealthy",
    status: answer.response.status,
    message: ok ? `GET ${url} answered 200.` : `GET ${url} answered HTTP ${answer.response.status}.`,
    durationMs,
  };
}

/** A signed non-job POST to the dispatch URL (see the module comment). */
export async function probeSigning(dispatchUrl: string, signingSecret: string, now = new Date()): Promise<ProbeResult> {
  const started = Date.now();
  const body = JSON.stringify({ kind: "kiln.probe", sentAt: now.toISOString() });
  const headers = signWebhook(signingSecret, `probe_${crypto.randomUUID()}`, body, now);
  const answer = await timedFetch(dispatchUrl, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json", "user-agent": "kiln-orchestrator/1 (probe)" },
    body,
  });
  const durationMs = Date.now() - started;
  if ("error" in answer)
    return { ok: false, code: "unreachable", status: null, message: `POST ${dispatchUrl} failed: ${answer.error}`, durationMs };
  const text = await answer.response.text().catch(() => "");
  return { ...interpretSignedProbe(answer.response.status, errorCodeOf(text)), durationMs };
}

function errorCodeOf(text: string): string | null {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } })?.error?.code;
    return typeof code === "string" ? code.slice(0, 64) : null;
  } catch {
    return null;
  }
}

async function timedFetch(url: string, init: RequestInit): Promise<{ response: Response } | { error: string }> {
  // Not AbortSignal.timeout(): its timer outlives the request (see workers/dispatch.ts).
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS);
  try {
    return { response: await fetch(url, { ...init, redirect: "manual", signal: abort.signal }) };
  } catch (error) {
    return {
      error: abort.signal.aborted
        ? `no answer within ${PROBE_TIMEOUT_MS / 1000} s`
        : String((error as Error)?.message ?? error).slice(0, 200),
    };
  } finally {
    clearTimeout(timer);
  }
}
