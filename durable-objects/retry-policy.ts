/**
 * Leases, deadlines and retries of build attempts, pure. A lost runner, a refused dispatch or
 * an infra failure is retried on another runner up to twice, 10 s apart doubling (capped at
 * 5 min); a build failure (a step exited non-zero) never is.
 */

/** The numbers the issue fixes; objects read them from here, tests may pass their own. */
export type RetryPolicy = {
  /** First attempt plus retries. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Runners heartbeat this often (the runner side of the contract, documented in docs/protocol.md). */
  heartbeatMs: number;
  /** An attempt with no event for this long is lost. */
  leaseMs: number;
  /** A fleet must answer the dispatch POST within this. */
  dispatchTimeoutMs: number;
  /** Default and largest build timeout (per attempt, from dispatch). */
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** After the deadline, how long the runner has to report `timeout` before the object declares it. */
  deadlineGraceMs: number;
  /** After a cancel, how long a live runner has to confirm before the object gives up on it. */
  cancelGraceMs: number;
};

/** Kiln's policy. */
export const RETRY_POLICY: RetryPolicy = {
  maxAttempts: 3,
  baseDelayMs: 10_000,
  maxDelayMs: 5 * 60_000,
  heartbeatMs: 15_000,
  leaseMs: 60_000,
  dispatchTimeoutMs: 10_000,
  defaultTimeoutMs: 60 * 60_000,
  maxTimeoutMs: 24 * 60 * 60_000,
  deadlineGraceMs: 60_000,
  cancelGraceMs: 2 * 60_000,
};

/** Delay before the retry that follows the `failedAttempts`-th failed attempt (1 -> 10 s, 2 -> 20 s, ...). */
export function backoffMs(failedAttempts: number, policy: RetryPolicy = RETRY_POLICY): number {
  const exponent = Math.max(0, failedAttempts - 1);
  // Cap the exponent first so large attempt counts cannot overflow to Infinity.
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(exponent, 30));
}

/** Why an attempt ended without a verdict on the build itself. */
export type AttemptFailure = "refused" | "lost" | "infra";

/** What follows a failed attempt: another one after a delay, or the end. */
export type RetryDecision = { kind: "retry"; delayMs: number } | { kind: "give_up" };

/** Retry after `attemptNo` attempts ended in an attempt failure (never called for build failures). */
export function afterAttemptFailure(attemptNo: number, policy: RetryPolicy = RETRY_POLICY): RetryDecision {
  return attemptNo < policy.maxAttempts ? { kind: "retry", delayMs: backoffMs(attemptNo, policy) } : { kind: "give_up" };
}

/** The build timeout for a requested number of seconds: default 1 h, clamped to 24 h. */
export function timeoutMsFor(requestedSeconds: number | undefined, policy: RetryPolicy = RETRY_POLICY): number {
  if (requestedSeconds === undefined) return policy.defaultTimeoutMs;
  return Math.min(policy.maxTimeoutMs, Math.max(1000, requestedSeconds * 1000));
}
