/**
 * A build's timeline from its record (build-timeline-store.ts), pure: the orchestrator's
 * segments back to back from creation to the end (each status the build was in; `running`
 * split at the runner's `started` into `runner_queue` and `running`), each layer's phases
 * clamped into the attempt that ran them, the critical path, and the failing step.
 */
import type { BuildSegment, BuildTimeline, LayerPhase, TimelineLayer } from "@kiln-build/protocol";
import type { StoredPhase, TimelineRecord } from "./build-timeline-store.ts";

const TERMINAL = new Set(["succeeded", "failed", "cancelled", "timeout"]);
const SEGMENT_OF: Record<string, BuildSegment["kind"]> = {
  waiting: "waiting",
  queued: "queued",
  dispatching: "dispatching",
  running: "running",
  retrying: "retrying",
};
// Phases that end within this of another's start may follow it on the critical path.
const CRITICAL_SLACK_MS = 50;

/** Assembles the timeline; `cachedFrom(key)` names the build that produced a cached layer. */
export function assembleTimeline(record: TimelineRecord, cachedFrom: (key: string) => string | null): BuildTimeline {
  const endMs = record.finishedMs ?? record.nowMs;
  const segments = buildSegments(record, endMs);
  const phases = record.phases.map((p) => clampPhase(p, attemptWindow(record, segments, p.attemptNo, endMs), TERMINAL.has(record.status)));
  const critical = criticalPath(phases.filter((p) => p.attemptNo === lastAttempt(record)));
  const layers: TimelineLayer[] = record.layers.map((l) => ({
    index: l.index,
    key: l.key,
    state: layerState(record, l),
    cachedFrom: l.state === "cached" ? cachedFrom(l.key) : null,
    phases: phases
      .filter((p) => p.layerKey === l.key)
      .map((placed) => {
        const { attemptNo, layerKey: _key, ...p } = placed;
        return { ...p, attempt: attemptNo, critical: critical.has(placed) };
      }),
  }));
  return {
    buildId: record.buildId,
    status: record.status,
    createdAtMs: record.createdMs,
    finishedAtMs: record.finishedMs,
    wallMs: Math.max(0, endMs - record.createdMs),
    segments,
    layers,
    failedStep: failedStep(record, layers),
  };
}

/** The build's own segments: one per status it entered (marks), back to back, the last ending at `endMs`. */
function buildSegments(record: TimelineRecord, endMs: number): BuildSegment[] {
  type Open = Omit<BuildSegment, "endedAtMs" | "durationMs">;
  const opens: Open[] = [{ kind: "waiting", startedAtMs: record.createdMs, attempt: null, fleetId: null, note: null }];
  for (const mark of record.marks) {
    const at = Math.min(Math.max(mark.atMs, opens.at(-1)!.startedAtMs), endMs);
    if (mark.kind === "waiting_on") {
      if (opens.at(-1)!.kind === "waiting") opens.at(-1)!.note = `waiting for layer ${mark.layerKey?.slice(0, 12)} (build ${mark.note})`;
      continue;
    }
    if (mark.kind === "runner_started") {
      // The runner started this attempt: what was `running` so far sat in the runner's own queue.
      const last = opens.at(-1)!;
      if (last.kind === "running" && last.attempt === mark.attemptNo) {
        last.kind = "runner_queue";
        opens.push({ ...last, kind: "running", startedAtMs: at });
      }
      continue;
    }
    if (TERMINAL.has(mark.kind)) break;
    const kind = SEGMENT_OF[mark.kind];
    if (!kind) continue;
    const attempt = kind === "waiting" || kind === "queued" ? null : mark.attemptNo;
    const fleetId = attempt === null ? null : (mark.fleetId ?? record.attempts.find((a) => a.attemptNo === attempt)?.fleetId ?? null);
    opens.push({ kind, startedAtMs: at, attempt, fleetId, note: mark.note });
  }
  return opens.map((open, i) => {
    const endedAtMs = i + 1 < opens.length ? opens[i + 1]!.startedAtMs : TERMINAL.has(record.status) ? endMs : null;
    return { ...open, endedAtMs, durationMs: Math.max(0, (endedAtMs ?? endMs) - open.startedAtMs) };
  });
}

/** The window an attempt's phases must fall in: from its dispatch to the start of the next segment after its last. */
function attemptWindow(record: TimelineRecord, segments: BuildSegment[], attemptNo: number, endMs: number): [number, number] {
  const own = segments.filter((s) => s.attempt === attemptNo);
  const first = own[0]?.startedAtMs ?? record.createdMs;
  const last = own.at(-1);
  return [first, last ? (last.endedAtMs ?? endMs) : endMs];
}

type Placed = Omit<LayerPhase, "attempt" | "critical"> & { attemptNo: number; layerKey: string };

// Clamped into its attempt's window (the clock estimate can be off by the network's latency); a
// span left open by a build that ended counts as stopped at the attempt's end.
function clampPhase(p: StoredPhase, [from, to]: [number, number], buildEnded: boolean): Placed {
  const startedAtMs = Math.min(Math.max(p.startedAtMs, from), to);
  const open = p.endedAtMs === null;
  const endedAtMs = open ? (buildEnded ? to : null) : Math.min(Math.max(p.endedAtMs!, startedAtMs), to);
  const outcome = open && buildEnded ? "stopped" : p.outcome;
  return { ...p, startedAtMs, endedAtMs, outcome, durationMs: Math.max(0, (endedAtMs ?? to) - startedAtMs) };
}

/**
 * The phases that decided the end: from the phase that ended last, back through the phase
 * that ended last before each one started (what it waited for), until none is left.
 */
export function criticalPath<T extends { startedAtMs: number; endedAtMs: number | null }>(phases: readonly T[]): Set<T> {
  const path = new Set<T>();
  const ended = phases.filter((p) => p.endedAtMs !== null);
  let current = ended.reduce<T | null>((best, p) => (best === null || p.endedAtMs! > best.endedAtMs! ? p : best), null);
  while (current) {
    path.add(current);
    const start = current.startedAtMs;
    current = ended.reduce<T | null>(
      (best, p) =>
        !path.has(p) &&
        p.endedAtMs! <= start + CRITICAL_SLACK_MS &&
        p.startedAtMs < start &&
        (best === null || p.endedAtMs! > best.endedAtMs!)
          ? p
          : best,
      null,
    );
  }
  return path;
}

function lastAttempt(record: TimelineRecord): number {
  return record.attempts.at(-1)?.attemptNo ?? 0;
}

function layerState(record: TimelineRecord, layer: TimelineRecord["layers"][number]): TimelineLayer["state"] {
  if (layer.state === "cached") return "cached";
  if (layer.state === "built") return "built";
  if (layer.state === "claimed" && record.failedLayer === layer.key) return "failed";
  return layer.state === "claimed" && !TERMINAL.has(record.status) ? "building" : "pending";
}

/** The failed layer's failing step (its last phase that failed), else what the failure itself says. */
function failedStep(record: TimelineRecord, layers: TimelineLayer[]): BuildTimeline["failedStep"] {
  const layer = layers.find((l) => l.state === "failed");
  if (!layer) return null;
  const phase = layer.phases.findLast((p) => p.outcome === "failed" && (p.kind === "step" || p.kind === "pull" || p.kind === "build"));
  return {
    layerKey: layer.key,
    layerIndex: layer.index,
    step: phase?.step ?? null,
    line: phase?.line ?? null,
    exitCode: phase?.exitCode ?? record.failureExitCode,
  };
}
