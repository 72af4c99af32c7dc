// Heartbeats go out every interval with ±20 % jitter, one attempt each, until stopped.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { EventClient } from "../src/event-client.ts";
import { startHeartbeats } from "../src/heartbeat.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("startHeartbeats", () => {
  it("beats every 15 s ± 20 % and stops when told", async () => {
    vi.useFakeTimers();
    const times: number[] = [];
    const client = { sendOnce: async () => (times.push(Date.now()), "delivered" as const) } as unknown as EventClient;
    const start = Date.now();
    const stop = startHeartbeats(client, 15_000);
    for (let i = 0; i < 20; i++) await vi.advanceTimersByTimeAsync(18_000);
    stop();
    const count = times.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(times.length).toBe(count);
    const gaps = times.map((t, i) => t - (times[i - 1] ?? start));
    expect(gaps.length).toBeGreaterThanOrEqual(20);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(12_000);
      expect(gap).toBeLessThanOrEqual(18_000);
    }
    // Jittered, not a fixed period.
    expect(new Set(gaps).size).toBeGreaterThan(1);
  });
});
