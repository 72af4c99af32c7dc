/**
 * Why a job stopped, in the protocol's terms. Every error a job step throws is turned into
 * one of these before it is reported, so the orchestrator's retry policy (never retry
 * `build`, retry `infra` elsewhere) sees the right reason.
 */

import type { FailureReasonSchema } from "@kiln-build/protocol";
import type { z } from "zod";

/** `build` | `infra` | `timeout` | `cancelled`. */
export type FailureReason = z.infer<typeof FailureReasonSchema>;

/** A failure with its protocol reason; messages never contain secret values. */
export class JobFailure extends Error {
  /** The protocol reason reported in the `failed` event. */
  readonly reason: FailureReason;
  /** Exit code of the failed build step, for `build` failures. */
  readonly exitCode: number | null;
  /** The layer being built when the job failed, if any. */
  layerKey: string | null;

  constructor(
    reason: FailureReason,
    message: string,
    options: { exitCode?: number | null; layerKey?: string | null; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "JobFailure";
    this.reason = reason;
    this.exitCode = options.exitCode ?? null;
    this.layerKey = options.layerKey ?? null;
  }
}

/** Shorthand for an `infra` failure: anything that is not the user's build step failing. */
export function infraFailure(message: string, cause?: unknown): JobFailure {
  return new JobFailure("infra", message, { cause });
}

/** Normalises anything thrown during a job into a `JobFailure` (unknown errors are `infra`). */
export function toJobFailure(error: unknown): JobFailure {
  if (error instanceof JobFailure) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new JobFailure("infra", `runner error: ${message}`, { cause: error });
}
