/**
 * Build timelines: the phase spans a runner reports (`phases` events: a layer's context
 * download, base pull, each Dockerfile step, commit and push, with runner-clock times) and
 * the timeline the API serves (`GET /v1/builds/:id/timeline`): the orchestrator's own phases
 * (waiting, queued, dispatching, runner queue, running, retrying) and each layer's phases, on
 * the orchestrator's clock. Decision 0020 explains the clocks and where the data lives.
 */
import { z } from "zod";
import { LayerKey } from "./digest.ts";

/** Longest Dockerfile line a phase carries; longer lines are cut (the log has the rest). */
export const MAX_PHASE_LINE_CHARS = 1024;
/** Most spans in one `phases` event. */
export const MAX_PHASES_PER_EVENT = 256;

/** What a layer's phase is: `inputs` (context download and unpack), `pull` (the FROM step), `step`, `commit`, `push`, or `build` (a backend whose steps the runner cannot see). */
export const LayerPhaseKindSchema = z.enum(["inputs", "pull", "step", "commit", "push", "build"]);
/** A layer phase's kind. */
export type LayerPhaseKind = z.infer<typeof LayerPhaseKindSchema>;

/** How a phase ended: `running` while it has not. */
export const PhaseOutcomeSchema = z.enum(["running", "ok", "failed", "stopped"]);
/** A phase's outcome. */
export type PhaseOutcome = z.infer<typeof PhaseOutcomeSchema>;

/**
 * One span as a runner reports it, on the runner's clock. A span is sent when it starts
 * (`endedAtMs` null, outcome `running`) and again when it ends; `span` numbers it within the
 * attempt, so the later report replaces the earlier.
 */
export const RunnerPhaseSchema = z
  .object({
    span: z.number().int().nonnegative(),
    layerKey: LayerKey,
    kind: LayerPhaseKindSchema,
    /** The step number and the step count as the backend printed them (`STEP 2/5`); null for other kinds. */
    step: z.number().int().positive().nullable(),
    totalSteps: z.number().int().positive().nullable(),
    /** The Dockerfile line of a step (secrets masked), cut to MAX_PHASE_LINE_CHARS; null for other kinds. */
    line: z.string().max(MAX_PHASE_LINE_CHARS).nullable(),
    startedAtMs: z.number().int().nonnegative(),
    endedAtMs: z.number().int().nonnegative().nullable(),
    outcome: PhaseOutcomeSchema,
    /** A failed step's exit code, when the backend printed one. */
    exitCode: z.number().int().nullable(),
  })
  .strict();
/** One reported span. */
export type RunnerPhase = z.infer<typeof RunnerPhaseSchema>;

/** The body of a `phases` event (besides the job identity): spans, and the runner's clock when it built the event. */
export const PhasesEventFields = {
  /** The runner's clock (epoch ms) when the event was built: the orchestrator estimates the runner's clock offset from it. */
  sentAtMs: z.number().int().nonnegative(),
  phases: z.array(RunnerPhaseSchema).min(1).max(MAX_PHASES_PER_EVENT),
};

/** The orchestrator's phases of a build, back to back from creation to the end. */
export const BuildSegmentKindSchema = z.enum(["waiting", "queued", "dispatching", "runner_queue", "running", "retrying"]);

/** One of the build's own phases, on the orchestrator's clock. */
export const BuildSegmentSchema = z.object({
  kind: BuildSegmentKindSchema,
  startedAtMs: z.number().int(),
  /** Null while it lasts. */
  endedAtMs: z.number().int().nullable(),
  durationMs: z.number().int().nonnegative(),
  attempt: z.number().int().nullable(),
  fleetId: z.string().nullable(),
  /** Why: the layer a `waiting` build waits for, the failure a `retrying` one retries after. */
  note: z.string().nullable(),
});

/** One phase of a layer, on the orchestrator's clock. */
export const LayerPhaseSchema = z.object({
  kind: LayerPhaseKindSchema,
  attempt: z.number().int(),
  step: z.number().int().nullable(),
  totalSteps: z.number().int().nullable(),
  line: z.string().nullable(),
  startedAtMs: z.number().int(),
  endedAtMs: z.number().int().nullable(),
  durationMs: z.number().int().nonnegative(),
  outcome: PhaseOutcomeSchema,
  exitCode: z.number().int().nullable(),
  /** On the critical path: the chain of phases that decided when the build ended. */
  critical: z.boolean(),
});

/** One layer of the build: cached (with the build that produced it) or built here, with its phases. */
export const TimelineLayerSchema = z.object({
  index: z.number().int(),
  key: z.string(),
  state: z.enum(["cached", "built", "failed", "building", "pending"]),
  /** For a cached layer: the build that produced it (null when unknown). */
  cachedFrom: z.string().nullable(),
  phases: z.array(LayerPhaseSchema),
});

/** `GET /v1/builds/:id/timeline`. */
export const BuildTimelineSchema = z.object({
  buildId: z.string(),
  status: z.string(),
  createdAtMs: z.number().int(),
  finishedAtMs: z.number().int().nullable(),
  /** From creation to the end (or to now while it runs): the segments add up to it. */
  wallMs: z.number().int().nonnegative(),
  segments: z.array(BuildSegmentSchema),
  layers: z.array(TimelineLayerSchema),
  /** The failing step, when a step failed: its layer, number, Dockerfile line and exit code. */
  failedStep: z
    .object({
      layerKey: z.string(),
      layerIndex: z.number().int(),
      step: z.number().int().nullable(),
      line: z.string().nullable(),
      exitCode: z.number().int().nullable(),
    })
    .nullable(),
});

/** A build's timeline. */
export type BuildTimeline = z.infer<typeof BuildTimelineSchema>;
/** One build segment. */
export type BuildSegment = z.infer<typeof BuildSegmentSchema>;
/** One layer phase as served. */
export type LayerPhase = z.infer<typeof LayerPhaseSchema>;
/** One layer as served. */
export type TimelineLayer = z.infer<typeof TimelineLayerSchema>;
