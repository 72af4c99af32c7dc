/**
 * When webhook deliveries are attempted (decision 0017). Pure. The default is the Standard
 * Webhooks (Svix) schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after
 * each failure, about 27.6 hours in all; the `WEBHOOK_RETRY_SCHEDULE_MS` var replaces it (tests,
 * the local stack) with comma-separated delays in milliseconds.
 */

/** The production schedule: the delay before each attempt, counted from the previous failure (the first from the event). */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];

// A schedule longer than this many attempts, or delays longer than a week, is a typo.
const MAX_ATTEMPTS = 20;
const MAX_DELAY_MS = 7 * 24 * 3_600_000;

/** The schedule a `WEBHOOK_RETRY_SCHEDULE_MS` value names; the default when unset or malformed. */
export function retrySchedule(text: string | undefined): readonly number[] {
  if (!text?.trim()) return DEFAULT_RETRY_SCHEDULE_MS;
  const delays = text.split(",").map((part) => Number(part.trim()));
  const valid =
    delays.length >= 1 && delays.length <= MAX_ATTEMPTS && delays.every((d) => Number.isInteger(d) && d >= 0 && d <= MAX_DELAY_MS);
  return valid ? delays : DEFAULT_RETRY_SCHEDULE_MS;
}

/** When attempt number `attemptsMade + 1` is due after a failure at `nowMs`, or null when the schedule is spent. */
export function nextAttemptMs(schedule: readonly number[], attemptsMade: number, nowMs: number): number | null {
  const delay = schedule[attemptsMade];
  return delay === undefined ? null : nowMs + delay;
}

/** Whether a receiver's status code means delivered: 2xx only (a redirect is not followed, so it is a failure). */
export function isDelivered(statusCode: number | null): boolean {
  return statusCode !== null && statusCode >= 200 && statusCode < 300;
}
