/**
 * Heartbeats: every 15 s with ±20 % jitter (so a fleet's runners do not beat in lockstep),
 * one attempt each. The orchestrator's lease is 60 s, so a missed beat is retried by the
 * next one; a response carrying `cancel: true` reaches the job through the event client.
 */
import type { EventClient } from "./event-client.ts";

/** Starts beating; returns a function that stops the loop. */
export function startHeartbeats(client: EventClient, intervalMs = 15_000, jitter = 0.2): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    const delay = intervalMs * (1 - jitter + Math.random() * 2 * jitter);
    timer = setTimeout(async () => {
      await client.sendOnce({ type: "heartbeat" }).catch(() => "failed");
      schedule();
    }, delay);
    // A pending heartbeat must not keep a finished runner process alive.
    timer.unref();
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
