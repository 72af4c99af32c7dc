/** What bench/context-delta.ts and its SDK client (bench/context-delta-client.mjs) pass each other. */

/** What the parent passes the client. */
export type ClientArgs = { url: string; token: string; tree: string; changedBytes: number; recheckRuns: number };

/** One build up to its accepted submission: seconds, request body bytes and requests. */
export type BuildFigures = { seconds: number; bytes: number; requests: number };

/** What the client measured (memory in MiB, unrounded). */
export type ClientResult = {
  first: BuildFigures;
  second: BuildFigures;
  /** Seconds of each unchanged re-check. */
  recheckRuns: number[];
  manifestBytes: number;
  peakRssMiB: number;
  rssPhasesMiB: Record<string, number>;
  memoryPeaksMiB: Record<string, number>;
};
