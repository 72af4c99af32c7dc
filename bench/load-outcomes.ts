/** Per-request outcomes of one traffic class in `npm run bench:load`, and their summary. */
import { percentile } from "./stats.ts";

/** Requests, statuses and latencies of one class, measured per request (autocannon's numbers are per instance). */
export type Outcome = { count: number; statuses: Record<string, number>; latenciesMs: number[] };

/** `x` rounded to `digits` decimals. */
export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** An empty outcome. */
export const outcome = (): Outcome => ({ count: 0, statuses: {}, latenciesMs: [] });

/** Records one response; its latency only when the request's start was noted. */
export function note(o: Outcome, status: number, startedAt: number | undefined): void {
  o.count++;
  o.statuses[status] = (o.statuses[status] ?? 0) + 1;
  if (startedAt !== undefined) o.latenciesMs.push(performance.now() - startedAt);
}

/** Throughput, p50/p99 latency and status counts over a run of `seconds`. */
export const summary = (o: Outcome, seconds: number) => ({
  requests: o.count,
  rps: round(o.count / seconds),
  p50Ms: round(percentile(o.latenciesMs, 50), 2),
  p99Ms: round(percentile(o.latenciesMs, 99), 2),
  statuses: o.statuses,
});
