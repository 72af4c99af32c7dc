/**
 * A snapshot of a Build object's timeline record: its row, layers and attempts (build-store.ts)
 * with its marks and phases (build-timeline-store.ts). Kept apart from both stores so neither
 * imports the other.
 */
import type { BuildStore } from "./build-store.ts";
import type { BuildTimeline, TimelineRecord } from "./build-timeline-store.ts";

/** A snapshot of everything the build's timeline is made of, or null before the build exists. */
export function timelineRecord(store: BuildStore, timeline: BuildTimeline, nowMs: number): TimelineRecord | null {
  const rec = store.load();
  if (!rec) return null;
  return {
    buildId: rec.id,
    status: rec.machine.status,
    createdMs: rec.createdMs,
    finishedMs: rec.finishedMs,
    nowMs,
    failedLayer: rec.failedLayer,
    failureExitCode: rec.failureExitCode,
    layers: store.layers().map((l) => ({ index: l.index, key: l.key, state: l.state })),
    attempts: store
      .attempts()
      .map((a) => ({ attemptNo: a.attemptNo, fleetId: a.fleetId, dispatchedMs: a.dispatchedMs, endedMs: a.endedMs })),
    marks: timeline.marks(),
    phases: timeline.phases(),
  };
}
