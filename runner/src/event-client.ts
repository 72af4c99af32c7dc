/**
 * Signed delivery of runner events to the orchestrator (`POST callback.eventsUrl`, Standard
 * Webhooks). A logical event keeps one `webhook-id` across retries, so an attempt whose
 * response was lost is deduplicated by the orchestrator instead of applied twice (it answers
 * 409 `duplicate_event`, which counts as delivered); each retry is re-signed with a fresh
 * timestamp. 409 `stale_attempt` means a newer attempt owns the job (docs/protocol.md).
 */
import { randomUUID } from "node:crypto";
import {
  type BaseDigestsReport,
  BaseDigestsReportSchema,
  type PushAttestationsRequest,
  PushAttestationsRequestSchema,
  type PushAttestationsResponse,
  PushAttestationsResponseSchema,
  type PushAttestationsResult,
  PushAttestationsResultSchema,
  type RunnerEvent,
  RunnerEventResponseSchema,
  RunnerEventSchema,
  type SbomEvent,
  SbomEventSchema,
  signWebhook,
} from "@kiln-build/protocol";
import { z } from "zod";
import type { Logger } from "./logger.ts";

type Distribute<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event without the job identity fields the client fills in. */
export type EventBody = Distribute<RunnerEvent, "jobId" | "attemptId" | "fencingToken">;

/** How one delivery ended. `fenced`: the orchestrator answered 409 (a newer attempt owns the job). */
export type DeliveryOutcome = "delivered" | "rejected" | "fenced" | "gave_up";

/** Options of {@link EventClient}. */
export type EventClientOptions = {
  eventsUrl: string;
  /** The fleet's signing secret (`whsec_...`). */
  secret: string;
  job: { jobId: string; attemptId: string; fencingToken: number };
  logger: Logger;
  /** Called when a response asks the runner to cancel the job. */
  onCancel?: () => void;
  /** Called once when the orchestrator refuses the attempt as stale (409). */
  onFenced?: () => void;
  fetch?: typeof fetch;
  requestTimeoutMs?: number;
  maxBackoffMs?: number;
};

/** Sends one job's events, signed, with retries on network errors, 408, 429 and 5xx. */
export class EventClient {
  readonly #options: EventClientOptions;
  readonly #fetch: typeof fetch;
  #fenced = false;

  constructor(options: EventClientOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
  }

  /** True once the orchestrator refused this attempt. */
  get fenced(): boolean {
    return this.#fenced;
  }

  /**
   * Delivers `body`, retrying with capped exponential backoff until it is accepted,
   * refused, the attempt is fenced, or `giveUp` aborts.
   */
  async deliver(body: EventBody, giveUp?: AbortSignal): Promise<DeliveryOutcome> {
    return this.#deliverPayload(this.#serialise(body), body.type, giveUp);
  }

  /** Delivers the image's `sbom` report (decision 0024) like any event; "rejected" from an orchestrator without attestations. */
  async deliverSbom(body: Omit<SbomEvent, "jobId" | "attemptId" | "fencingToken">, giveUp?: AbortSignal): Promise<DeliveryOutcome> {
    const { jobId, attemptId, fencingToken } = this.#options.job;
    const parsed = SbomEventSchema.safeParse({ ...body, jobId, attemptId, fencingToken });
    if (!parsed.success) throw new Error(`runner built an invalid sbom event: ${parsed.error.message}`);
    return this.#deliverPayload(JSON.stringify(parsed.data), "sbom", giveUp);
  }

  /**
   * Asks for the attestations of a pushed image (decision 0024); the signed statements, or null
   * when the orchestrator gave none (an older Kiln, attestations not configured, or refused).
   */
  async requestPushAttestations(
    body: Omit<PushAttestationsRequest, "type" | "jobId" | "attemptId" | "fencingToken">,
    giveUp?: AbortSignal,
  ): Promise<PushAttestationsResponse | null> {
    const { jobId, attemptId, fencingToken } = this.#options.job;
    const request = PushAttestationsRequestSchema.parse({ type: "push_attestations", ...body, jobId, attemptId, fencingToken });
    let answer: string | undefined;
    const outcome = await this.#deliverPayload(JSON.stringify(request), request.type, giveUp, (text) => {
      answer = text;
    });
    if (outcome !== "delivered" || answer === undefined) return null;
    const parsed = PushAttestationsResponseSchema.safeParse(safeJson(answer));
    return parsed.success ? parsed.data : null;
  }

  /** Reports what was attached to a pushed image (decision 0024). */
  async reportPushAttestations(
    body: Omit<PushAttestationsResult, "type" | "jobId" | "attemptId" | "fencingToken">,
    giveUp?: AbortSignal,
  ): Promise<DeliveryOutcome> {
    const { jobId, attemptId, fencingToken } = this.#options.job;
    const report = PushAttestationsResultSchema.parse({ type: "push_attestations_result", ...body, jobId, attemptId, fencingToken });
    return this.#deliverPayload(JSON.stringify(report), report.type, giveUp);
  }

  /** Delivers the `base_digests` report (decision 0024); "rejected" from an orchestrator without it. */
  async deliverBaseDigests(bases: BaseDigestsReport["bases"], giveUp?: AbortSignal): Promise<DeliveryOutcome> {
    const { jobId, attemptId, fencingToken } = this.#options.job;
    const report = BaseDigestsReportSchema.parse({ type: "base_digests", bases, jobId, attemptId, fencingToken });
    return this.#deliverPayload(JSON.stringify(report), report.type, giveUp);
  }

  async #deliverPayload(payload: string, type: string, giveUp?: AbortSignal, onAnswer?: (text: string) => void): Promise<DeliveryOutcome> {
    const id = `msg_${randomUUID()}`;
    for (let attempt = 0; ; attempt++) {
      if (this.#fenced) return "fenced";
      if (giveUp?.aborted) return "gave_up";
      const result = await this.#attempt(id, payload, type, onAnswer);
      if (result.kind !== "retry") return result.kind;
      const backoff = Math.min(this.#options.maxBackoffMs ?? 5_000, 200 * 2 ** Math.min(attempt, 10));
      const wait = Math.max(result.retryAfterMs ?? 0, backoff * (0.5 + Math.random() / 2));
      if (!(await sleep(wait, giveUp))) return "gave_up";
    }
  }

  /** One attempt without retries (heartbeats: the next one is the retry). */
  async sendOnce(body: EventBody): Promise<DeliveryOutcome | "failed"> {
    if (this.#fenced) return "fenced";
    const result = await this.#attempt(`msg_${randomUUID()}`, this.#serialise(body), body.type);
    return result.kind === "retry" ? "failed" : result.kind;
  }

  #serialise(body: EventBody): string {
    const { jobId, attemptId, fencingToken } = this.#options.job;
    const event = { ...body, jobId, attemptId, fencingToken };
    const parsed = RunnerEventSchema.safeParse(event);
    // Our own bug, not the orchestrator's: never send what the contract forbids.
    if (!parsed.success) throw new Error(`runner built an invalid ${body.type} event: ${parsed.error.message}`);
    return JSON.stringify(parsed.data);
  }

  async #attempt(
    id: string,
    payload: string,
    type: string,
    onAnswer?: (text: string) => void,
  ): Promise<{ kind: "delivered" | "rejected" | "fenced" } | { kind: "retry"; retryAfterMs?: number }> {
    const { eventsUrl, secret, logger } = this.#options;
    let response: Response;
    try {
      response = await this.#fetch(eventsUrl, {
        method: "POST",
        headers: { "content-type": "application/json", ...signWebhook(secret, id, payload) },
        body: payload,
        signal: AbortSignal.timeout(this.#options.requestTimeoutMs ?? 10_000),
      });
    } catch (error) {
      logger.debug("event delivery failed, will retry", { type, id, error: String(error) });
      return { kind: "retry" };
    }
    const text = await response.text().catch(() => "");
    if (response.ok) {
      onAnswer?.(text);
      this.#readResponse(text, type);
      return { kind: "delivered" };
    }
    if (response.status === 409) {
      const code = errorCode(text);
      // The orchestrator already applied this webhook-id (our earlier attempt got through, its answer did not).
      if (code === "duplicate_event") return { kind: "delivered" };
      if (code !== null && code !== "stale_attempt") {
        logger.error("orchestrator refused an event", { type, id, status: 409, code });
        return { kind: "rejected" };
      }
      if (!this.#fenced) {
        this.#fenced = true;
        logger.warn("orchestrator refused this attempt as stale (409); stopping the job", { type, jobId: this.#options.job.jobId });
        this.#options.onFenced?.();
      }
      return { kind: "fenced" };
    }
    if (response.status === 408 || response.status === 429 || response.status >= 500) {
      const retryAfter = Number(response.headers.get("retry-after"));
      return {
        kind: "retry",
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: Math.min(retryAfter * 1000, 60_000) } : {}),
      };
    }
    logger.error("orchestrator rejected an event", { type, id, status: response.status, body: text.slice(0, 300) });
    return { kind: "rejected" };
  }

  #readResponse(text: string, type: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const parsed = RunnerEventResponseSchema.loose().safeParse(json);
    if (!parsed.success) {
      this.#options.logger.warn("unexpected event response from orchestrator", { type });
      return;
    }
    if (parsed.data.cancel) this.#options.onCancel?.();
  }
}

const ErrorBody = z.object({ error: z.object({ code: z.string() }).loose() }).loose();

/** The `error.code` of an orchestrator error body, or null. */
function errorCode(text: string): string | null {
  try {
    const parsed = ErrorBody.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.error.code : null;
  } catch {
    return null;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
