/**
 * The orchestrator <-> runner protocol: the job the orchestrator dispatches (a signed POST
 * to the fleet's URL) and the events a runner reports back (signed POSTs to
 * `/v1/runner/events`). Both sides validate with these schemas; docs/protocol.md explains
 * the flow. Pure module: imported by the Worker and by the Node runner.
 */
import { z } from "zod";
import { LayerKey, Sha256Digest } from "./digest.ts";
import { LayerSpecSchema } from "./layer-spec.ts";
import { JobPushSchema, PushResultFields } from "./push.ts";
import { PhasesEventFields } from "./timeline.ts";

const Id = z.string().min(1).max(128);

/** Most lines a runner sends as a failed layer's log tail. */
export const MAX_LOG_TAIL_LINES = 100;

/** Longest log-tail line a runner sends; longer lines are cut. */
export const MAX_LOG_TAIL_LINE_CHARS = 4096;

/** Lines of a failure's log tail the orchestrator keeps and shows (the SDK's `ImageBuildError.logTail`). */
export const FAILURE_LOG_TAIL_LINES = 20;

/** Credentials the runner presents to a registry (basic auth or a bearer token). */
export const RegistryCredentialsSchema = z.object({ username: z.string(), password: z.string() }).strict();

/**
 * One layer to build, in chain order: the submitted layer spec (one definition, in
 * layer-spec.ts) plus what the orchestrator adds for the runner: the layer's key, its
 * position, where to download its context and where to push its image. The spec's
 * `registryAuth` travels as `baseAuth`, and `forceBuild` stays with the orchestrator.
 */
export const JobLayerSchema = LayerSpecSchema.pick({
  dockerfileCommands: true,
  secrets: true,
  gpu: true,
  buildArgs: true,
  buildFunction: true,
  pythonStandalone: true,
  dockerfileTarget: true,
  platform: true,
})
  .extend({
    key: LayerKey,
    /** Position in the image chain (0 = root). */
    index: z.number().int().nonnegative(),
    /** Where to download this layer's context manifest (its blobs: the same route by digest, decision 0022); null when it has none. */
    context: z.object({ digest: Sha256Digest, sizeBytes: z.number().int().nonnegative(), url: z.url() }).strict().nullable(),
    /** Registry credentials for a root layer's base image (`fromRegistry(..., { secret })`): the spec's `registryAuth`. */
    baseAuth: LayerSpecSchema.shape.registryAuth,
    /** The reference this layer's image is pushed to, e.g. `127.0.0.1:8787/ws_x/layers:<key>`. */
    target: z.string().min(1),
  })
  .strict();

/**
 * A build job: the uncached suffix of one image chain, built by one runner in order, then
 * (protocol 2) copied to the submission's push targets. A job without layers only pushes.
 */
export const JobSchema = z
  .object({
    /**
     * The runner protocol this job speaks (`PROTOCOL_VERSION` of the orchestrator that built it).
     * A runner checks it before anything else and refuses a version it does not speak with
     * 400 `protocol_unsupported`, so a mismatch fails the build with a clear message instead of
     * surfacing as an unknown field.
     */
    protocolVersion: z.number().int().positive(),
    jobId: Id,
    /** Changes on every retry; events for an older attempt are refused (409). */
    attemptId: Id,
    /** Monotonic per job; a runner echoes it in every event. */
    fencingToken: z.number().int().nonnegative(),
    workspaceId: Id,
    builderVersion: z.string(),
    /** The already-built parent image the first layer builds `FROM base` on; null when the first layer is a root. */
    parentReference: z.string().nullable(),
    /** Empty only for a push-only job (the image is cached; `push.source` names it). */
    layers: z.array(JobLayerSchema),
    /** Values of the secrets the layers declare, and of registry secrets; never any others. */
    secrets: z.record(z.string(), z.record(z.string(), z.string())),
    /** Push (and pull) credentials for the target registry, valid for this job only. */
    registry: z.object({ host: z.string().min(1), credentials: RegistryCredentialsSchema, insecure: z.boolean() }).strict(),
    /** Where to send events; a bearer token authenticates context downloads. */
    callback: z.object({ eventsUrl: z.url(), downloadToken: z.string().min(1) }).strict(),
    /** Epoch milliseconds after which the runner stops and reports `timeout`. */
    deadlineMs: z.number().int().positive(),
    /** Protocol 2: copy the finished image to external registries and report a `push_result` per target. */
    push: JobPushSchema.optional(),
  })
  .strict()
  .refine((job) => job.layers.length > 0 || (job.push !== undefined && job.push.source !== null), {
    message: "a job builds at least one layer, or pushes a named source image",
    path: ["layers"],
  });

/** A dispatched job. */
export type Job = z.infer<typeof JobSchema>;
/** One layer of a dispatched job. */
export type JobLayer = z.infer<typeof JobLayerSchema>;

const EventBase = {
  jobId: Id,
  attemptId: Id,
  fencingToken: z.number().int().nonnegative(),
};

/** Most data one log event carries (UTF-16 units, as the runner counts them). */
export const MAX_LOG_EVENT_CHARS = 1024 * 1024;
/** Most entries in one `logs` event. */
export const MAX_LOG_ENTRIES = 4096;

/** A piece of one layer's output stream, as `logs` events carry it. */
export const LogEntrySchema = z
  .object({
    /** The layer whose build produced the output; null for job-level messages. */
    layerKey: LayerKey.nullable(),
    stream: z.enum(["stdout", "stderr", "system"]),
    data: z.string().min(1).max(MAX_LOG_EVENT_CHARS),
  })
  .strict();

/** One entry of a `logs` event. */
export type LogEntry = z.infer<typeof LogEntrySchema>;

/** Why a job failed; only `build` (a step exited non-zero) is never retried. */
export const FailureReasonSchema = z.enum(["build", "infra", "timeout", "cancelled"]);

/** Everything a runner reports, as one tagged union on `type`. */
export const RunnerEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("accepted"), ...EventBase }).strict(),
  z.object({ type: z.literal("started"), ...EventBase }).strict(),
  z
    .object({
      type: z.literal("log"),
      ...EventBase,
      /** Sequence number of this chunk within the attempt, from 0, without gaps. */
      seq: z.number().int().nonnegative(),
      /** The layer whose build produced the output; null for job-level messages. */
      layerKey: LayerKey.nullable(),
      stream: z.enum(["stdout", "stderr", "system"]),
      /** UTF-8 text, secrets already masked; at most 1 MiB. */
      data: z.string().max(1024 * 1024),
    })
    .strict(),
  z
    .object({
      type: z.literal("logs"),
      ...EventBase,
      /** Sequence number within the attempt, shared with `log` events: from 0, without gaps. */
      seq: z.number().int().nonnegative(),
      /** Output in order, each entry one layer's stream (secrets already masked); at most 1 MiB of data in all. */
      entries: z.array(LogEntrySchema).min(1).max(MAX_LOG_ENTRIES),
    })
    .strict()
    .refine((event) => event.entries.reduce((sum, entry) => sum + entry.data.length, 0) <= MAX_LOG_EVENT_CHARS, {
      message: "a logs event carries at most 1 MiB of data",
      path: ["entries"],
    }),
  z.object({ type: z.literal("heartbeat"), ...EventBase }).strict(),
  /** Phase spans of the layers (protocol 2): step boundaries, pull, commit, push; see timeline.ts. */
  z.object({ type: z.literal("phases"), ...EventBase, ...PhasesEventFields }).strict(),
  z
    .object({
      type: z.literal("layer_succeeded"),
      ...EventBase,
      layerKey: LayerKey,
      /** Manifest digest of the pushed image. */
      digest: Sha256Digest,
      sizeBytes: z.number().int().nonnegative(),
      reference: z.string().min(1),
    })
    .strict(),
  /** Protocol 2: how one push target ended; sent once per target before `succeeded`. */
  z.object({ type: z.literal("push_result"), ...EventBase, ...PushResultFields }).strict(),
  z.object({ type: z.literal("succeeded"), ...EventBase }).strict(),
  z
    .object({
      type: z.literal("failed"),
      ...EventBase,
      reason: FailureReasonSchema,
      message: z.string().max(16 * 1024),
      layerKey: LayerKey.nullable(),
      exitCode: z.number().int().nullable(),
      /** The last lines of output, secrets masked. */
      logTail: z.array(z.string().max(MAX_LOG_TAIL_LINE_CHARS)).max(MAX_LOG_TAIL_LINES),
    })
    .strict(),
]);

/** One runner event. */
export type RunnerEvent = z.infer<typeof RunnerEventSchema>;

/** The orchestrator's answer to an accepted event; `cancel` asks the runner to stop the job. */
export const RunnerEventResponseSchema = z.object({ ok: z.literal(true), cancel: z.boolean() }).strict();
/** The orchestrator's answer to an accepted event. */
export type RunnerEventResponse = z.infer<typeof RunnerEventResponseSchema>;
