// Retry and deadline arithmetic, pure.
import { describe, expect, it } from "vitest";
import { afterAttemptFailure, backoffMs, RETRY_POLICY, timeoutMsFor } from "../../durable-objects/retry-policy.ts";

describe("retry policy", () => {
  it("backs off 10 s doubling, capped at 5 minutes", () => {
    expect([1, 2, 3, 4, 5, 6, 100].map((n) => backoffMs(n))).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  });

  it("allows the first attempt and two retries", () => {
    expect(afterAttemptFailure(1)).toEqual({ kind: "retry", delayMs: 10_000 });
    expect(afterAttemptFailure(2)).toEqual({ kind: "retry", delayMs: 20_000 });
    expect(afterAttemptFailure(3)).toEqual({ kind: "give_up" });
  });

  it("has the issue's heartbeat, lease and dispatch numbers", () => {
    expect(RETRY_POLICY).toMatchObject({ heartbeatMs: 15_000, leaseMs: 60_000, dispatchTimeoutMs: 10_000, maxAttempts: 3 });
  });

  it("defaults the timeout to 1 h and clamps it to 24 h", () => {
    expect(timeoutMsFor(undefined)).toBe(3_600_000);
    expect(timeoutMsFor(120)).toBe(120_000);
    expect(timeoutMsFor(10 * 86_400)).toBe(86_400_000);
  });
});
