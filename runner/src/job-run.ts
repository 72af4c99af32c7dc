/**
 * One dispatched attempt, from acceptance to its final event: heartbeats from the moment
 * it is accepted (a queued job must keep its lease), cancel and deadline handling, the
 * layer loop, the `layer_succeeded` / `succeeded` / `failed` events, and the removal of
 * every file the job wrote, whatever happened.
 *
 * The layer loop is a two-stage pipeline: layer i is pushed and verified in the background
 * (a {@link PublishQueue}, one push at a time) while layer i+1 builds on the local image of
 * layer i. Runs of layers that can share one backend session build as a chain
 * (chain-plan.ts, chain-build.ts), each layer handed on as soon as its last step is done.
 * The first failure decides the job: a build that fails while an earlier layer is still
 * being pushed lets that push finish (the orchestrator caches what succeeded); a push that
 * fails stops the build running meanwhile.
 */
import path from "node:path";
import type { FleetPlatforms, Job } from "@kiln-build/protocol";
import type { BuildBackend } from "./backends/types.ts";
import { startImageReport } from "./base-digests.ts";
import { buildChain } from "./chain-build.ts";
import { planChains } from "./chain-plan.ts";
import type { RunnerConfig } from "./config.ts";
import { type EventBody, EventClient } from "./event-client.ts";
import { type FailureReason, JobFailure, toJobFailure } from "./failure.ts";
import type { GpuPool } from "./gpu.ts";
import { startHeartbeats } from "./heartbeat.ts";
import { inLayerOrder } from "./in-layer-order.ts";
import { type JobFiles, noJobFiles, openJobFiles, removeJobFiles } from "./job-files.ts";
import {
  type BuiltLayer,
  buildLayer,
  type LayerBuildEnv,
  type LayerInputs,
  type LayerResult,
  prepareLayerInputs,
  publishLayer,
} from "./layer-build.ts";
import { LogBuffer } from "./log-buffer.ts";
import { LogShipper } from "./log-shipper.ts";
import type { Logger } from "./logger.ts";
import { machineMismatch } from "./machine-fit.ts";
import { PhaseRecorder } from "./phase-recorder.ts";
import { PublishQueue } from "./publish-queue.ts";
import { type PushLogin, pinnedSource, resolvePushLogins, runPushes } from "./push-job.ts";
import type { PythonCache } from "./python-standalone.ts";
import { baseImageLogin, loginSecrets, type RegistryLogin } from "./registry-auth.ts";
import { registryFetch } from "./registry-tls.ts";
import { jobSecretValues, SecretMasker } from "./secret-mask.ts";
import type { WorkspaceStorages } from "./workspace-storage.ts";

/** Shared services a job runs with. */
export type JobDeps = {
  config: RunnerConfig;
  backend: BuildBackend;
  /** Each job builds in its own workspace's storage, with that storage's janitor. */
  storages: WorkspaceStorages;
  gpuPool: GpuPool;
  pythonCache: PythonCache;
  logger: Logger;
  fetch?: typeof fetch;
  /** The platforms this machine builds (detected at start); absent: not checked. */
  platforms?: FleetPlatforms;
};

/** Why a job was stopped from outside its build. */
export type StopReason = "cancelled" | "timeout" | "fenced" | "shutdown";

/** How a job ended, for the runner's own log and for tests. */
export type JobOutcome = { status: "succeeded" } | { status: "failed"; reason: FailureReason; message: string } | { status: "fenced" };

const MAX_MESSAGE = 16 * 1024;

/** What one execution has set up so far: what the failure path reports with and the cleanup removes. */
type Execution = {
  /** Masks the job's secrets; replaced once the registry logins are known. */
  masker: SecretMasker;
  /** Directories, storage claim and built images, removed afterwards. */
  files: JobFiles;
  shipper: LogShipper | null;
  /** The layers' phase spans for the timeline; flushed before the final event. */
  phases: PhaseRecorder | null;
  /** The `layer_succeeded` deliveries, chained in layer order. */
  layerEvents: Promise<unknown>;
  /** The layer (or chain's first layer) building now, named by a failure that names none. */
  current: string | null;
  publishing: PublishQueue<LayerResult>;
  /** Stops fetching layer inputs ahead of the builds; awaited before the job's files are removed. */
  prefetch: AbortController;
  /** The job's builds in order: layer positions, a chain's together. */
  chains: number[][];
  inputs: Promise<LayerInputs>[];
  started: Promise<unknown>;
  /** The logins of the job's push targets (decision 0019), and the last layer as published (the push's source). */
  pushLogins: PushLogin[];
  published: string | null;
};

/** One attempt of one job. */
export class JobRun {
  readonly job: Job;
  readonly #deps: JobDeps;
  readonly #events: EventClient;
  readonly #stop = new AbortController();
  /** Aborted once the final flush has run out of time: undelivered events are then given up. */
  readonly #giveUp = new AbortController();
  #stopReason: StopReason | null = null;
  #stopHeartbeats: () => void = () => {};
  #deadlineTimer: NodeJS.Timeout | undefined;
  #accepted: Promise<unknown> = Promise.resolve();
  /** Called once when the job is stopped (cancel, deadline, ...), so a queued job can leave the queue. */
  onStop: (reason: StopReason) => void = () => {};

  constructor(job: Job, deps: JobDeps) {
    this.job = job;
    this.#deps = deps;
    this.#events = new EventClient({
      eventsUrl: job.callback.eventsUrl,
      secret: deps.config.webhookSecrets[0]!,
      job: { jobId: job.jobId, attemptId: job.attemptId, fencingToken: job.fencingToken },
      logger: deps.logger,
      onCancel: () => this.stop("cancelled"),
      onFenced: () => this.stop("fenced"),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
  }

  /** `jobId:attemptId`, the identity of this attempt. */
  get id(): string {
    return `${this.job.jobId}:${this.job.attemptId}`;
  }

  /** Reports `accepted`, starts heartbeats and the deadline clock. Called when the dispatch is queued. */
  accept(): void {
    this.#accepted = this.#events.deliver({ type: "accepted" }, this.#stop.signal);
    this.#stopHeartbeats = startHeartbeats(this.#events, this.#deps.config.heartbeatMs);
    const remaining = this.job.deadlineMs - Date.now();
    this.#deadlineTimer = setTimeout(() => this.stop("timeout"), Math.max(0, Math.min(remaining, 2 ** 31 - 1)));
  }

  /** Stops the job: running tools get SIGTERM, then SIGKILL after the grace period. */
  stop(reason: StopReason): void {
    if (this.#stopReason !== null) return;
    this.#stopReason = reason;
    this.#stop.abort(reason);
    this.onStop(reason);
  }

  /** Builds every layer and reports the outcome. Never throws. */
  async execute(): Promise<JobOutcome> {
    const run: Execution = {
      masker: new SecretMasker(jobSecretValues(this.job), this.#deps.config.maskMinLength),
      files: noJobFiles(),
      shipper: null,
      phases: null,
      layerEvents: Promise.resolve(),
      current: null,
      publishing: new PublishQueue<LayerResult>(),
      prefetch: new AbortController(),
      chains: [],
      inputs: [],
      started: Promise.resolve(),
      pushLogins: [],
      published: null,
    };
    try {
      return await this.#run(run);
    } catch (error) {
      return await this.#fail(run, error);
    } finally {
      this.#stopHeartbeats();
      clearTimeout(this.#deadlineTimer);
      run.prefetch.abort();
      await Promise.allSettled(run.inputs);
      await removeJobFiles(this.#deps.config, run.files, this.#deps.logger);
    }
  }

  /** The job from `started` to `succeeded`; throws whatever ends it early. */
  async #run(run: Execution): Promise<JobOutcome> {
    const { job } = this;
    if (this.#stopReason) throw this.#stopped();
    // `started` must not overtake `accepted`; it travels while the job's files and inputs are prepared.
    run.started = this.#accepted.then(() => this.#events.deliver({ type: "started" }, this.#stop.signal));
    run.started.catch(() => undefined);
    const mismatch = machineMismatch(job, this.#deps.platforms, this.#deps.gpuPool);
    if (mismatch) throw mismatch;
    const { workDir, secretDir, storage } = await openJobFiles(this.#deps.storages, job, run.files);
    const { targetLogin, baseLogins } = await this.#resolveLogins(run);
    // A job stopped while it was being prepared (a deadline already past) ends before it has a log.
    if (this.#stopReason) throw this.#stopped();
    const shipper = this.#startShipper(run, workDir);
    run.phases = new PhaseRecorder({
      deliver: (body) => this.#events.deliver(body, this.#giveUp.signal),
      mask: (text) => run.masker.mask(text),
      progress: (line) => storage.backend.chainProgress(line),
    });
    const env: LayerBuildEnv = {
      phases: run.phases,
      ...this.#deps,
      backend: storage.backend,
      janitor: storage.janitor,
      job,
      shipper,
      signal: this.#stop.signal,
      workDir,
      secretDir,
      targetLogin,
      baseLogins,
      stopped: () => this.#stopped(),
    };
    // The next build's contexts download and unpack while this one builds (a chain's side by side).
    const inputsEnv: LayerBuildEnv = { ...env, signal: AbortSignal.any([this.#stop.signal, run.prefetch.signal]) };
    run.chains = planChains(job.layers, { enabled: this.#deps.config.chainLayers && this.#deps.backend.chains });
    run.inputs = inLayerOrder(job.layers, (layer, i) => prepareLayerInputs(inputsEnv, layer, i), run.chains);
    // Nothing is built before the orchestrator has heard that the job started.
    await run.started;
    if (this.#stopReason) throw this.#stopped();
    await this.#buildLayers(run, env);
    await run.publishing.settled();
    if (run.publishing.failure) throw run.publishing.failure;
    if (job.push) await this.#push(run, shipper, targetLogin);
    await this.#finish(shipper, Promise.all([run.layerEvents, run.phases.flush()]), { type: "succeeded" });
    this.#deps.logger.info("job succeeded", { jobId: job.jobId, attemptId: job.attemptId, layers: job.layers.length });
    return { status: "succeeded" };
  }

  /** The target registry's login and the base images' (an ECR token is fetched now); their secrets join the masker. */
  async #resolveLogins(run: Execution): Promise<{ targetLogin: RegistryLogin; baseLogins: Map<number, RegistryLogin> }> {
    const { config } = this.#deps;
    const job = this.job;
    const targetLogin: RegistryLogin = { host: job.registry.host, ...job.registry.credentials };
    const baseLogins = new Map<number, RegistryLogin>();
    for (const layer of job.layers) {
      const login = await baseImageLogin(layer, job.secrets, { ecrEndpoint: config.ecrEndpoint, signal: this.#stop.signal }).catch(
        (error: unknown) => {
          throw this.#stop.signal.aborted ? this.#stopped() : error;
        },
      );
      if (login) baseLogins.set(layer.index, login);
    }
    run.pushLogins = await resolvePushLogins(job, { ecrEndpoint: config.ecrEndpoint, signal: this.#stop.signal });
    const pushLogins = run.pushLogins.filter((l): l is RegistryLogin => l !== null && !(l instanceof Error));
    const extra = [targetLogin, ...baseLogins.values(), ...pushLogins].flatMap(loginSecrets);
    run.masker = new SecretMasker([...jobSecretValues(job), ...extra], config.maskMinLength);
    return { targetLogin, baseLogins };
  }

  /** Starts streaming the job's log, spilling to the job's directory while the orchestrator is unreachable. */
  #startShipper(run: Execution, workDir: string): LogShipper {
    const { config, logger } = this.#deps;
    const shipper = new LogShipper({
      buffer: new LogBuffer({
        spillPath: path.join(workDir, "log-spill.jsonl"),
        memoryBytes: config.logMemoryBytes,
        spillMaxBytes: config.logSpillMaxBytes,
      }),
      masker: run.masker,
      deliver: (body, giveUp) => this.#events.deliver(body, giveUp),
      logger,
      flushMs: config.logFlushMs,
      chunkBytes: config.logChunkBytes,
    });
    run.shipper = shipper;
    shipper.start();
    return shipper;
  }

  /** Builds the layers in order, alone or as chains; each built layer is pushed while the next builds. */
  async #buildLayers(run: Execution, env: LayerBuildEnv): Promise<void> {
    const job = this.job;
    // Builds also stop when a push fails: the job has failed, and that push's failure is the one to report.
    const buildEnv: LayerBuildEnv = {
      ...env,
      signal: AbortSignal.any([this.#stop.signal, run.publishing.signal]),
      stopped: () => (this.#stopReason ? this.#stopped() : toJobFailure(run.publishing.failure)),
    };
    const publish = (layerBuilt: BuiltLayer) => {
      run.files.built.push(layerBuilt.layer.target);
      // The top image's packages are read while it is pushed; its SBOM follows its result (decision 0024).
      const report = layerBuilt.layer === job.layers.at(-1) ? startImageReport(env, this.#events, layerBuilt) : null;
      // The next layer builds FROM the local image while this one is pushed; pushes stay one at a time.
      run.publishing.add(
        () => publishLayer(env, layerBuilt),
        (result) => {
          // Ordered but not awaited: the orchestrator hears about this layer while later ones build.
          const event: EventBody = { type: "layer_succeeded", layerKey: layerBuilt.layer.key, ...result };
          run.published = pinnedSource(layerBuilt.layer.target, result.digest);
          run.layerEvents = run.layerEvents.then(() => this.#events.deliver(event, this.#giveUp.signal));
          if (report) run.layerEvents = run.layerEvents.then(() => report(result.digest));
        },
      );
    };
    for (const members of run.chains) {
      if (buildEnv.signal.aborted) throw buildEnv.stopped();
      const first = members[0]!;
      const parent = first === 0 ? job.parentReference : job.layers[first - 1]!.target;
      run.current = job.layers[first]!.key;
      if (members.length === 1) {
        publish(await buildLayer(buildEnv, job.layers[first]!, first, parent, await run.inputs[first]!));
      } else {
        const chainMembers = await Promise.all(
          members.map(async (i) => ({ layer: job.layers[i]!, index: i, inputs: await run.inputs[i]! })),
        );
        await buildChain(buildEnv, chainMembers, parent, publish);
      }
      run.current = null;
    }
  }

  /** Copies the image to the job's push targets, each target's result reported in order before `succeeded`. */
  async #push(run: Execution, shipper: LogShipper, sourceLogin: RegistryLogin): Promise<void> {
    const { job } = this;
    const push = job.push!;
    const source = push.source ?? run.published;
    if (!source) throw new JobFailure("infra", "the job pushes but names no source image and built none");
    await runPushes({
      push,
      source,
      sourceLogin,
      sourceInsecure: job.registry.insecure,
      logins: run.pushLogins,
      insecureHosts: this.#deps.config.insecureRegistries,
      fetch: registryFetch(this.#deps.config.caFile),
      signal: this.#stop.signal,
      log: (line) => shipper.system(null, line),
      mask: (text) => run.masker.mask(text),
      report: (outcome) => {
        const event: EventBody = { type: "push_result", ...outcome };
        run.layerEvents = run.layerEvents.then(() => this.#events.deliver(event, this.#giveUp.signal));
      },
      attestations: { events: this.#events, giveUp: this.#giveUp.signal, delivered: () => run.layerEvents },
    }).catch((error: unknown) => {
      throw this.#stopReason ? this.#stopped() : error;
    });
  }

  /** Reports how the job failed (nothing when a newer attempt fenced it), once every queued push has ended. */
  async #fail(run: Execution, error: unknown): Promise<JobOutcome> {
    const { logger } = this.#deps;
    const { jobId, attemptId } = this.job;
    // Whichever failed first decides: a push that failed while a layer built stopped that build.
    const pushFailedFirst = run.publishing.failure;
    // Pushes already queued still finish (or stop with the job), so every layer that made it is reported.
    await run.publishing.settled();
    // The final event never overtakes `started`.
    await run.started.catch(() => undefined);
    const failure = this.#stopReason ? this.#stopped() : toJobFailure(pushFailedFirst ?? error);
    failure.layerKey ??= run.current;
    if (this.#stopReason === "fenced") {
      run.shipper?.stop();
      logger.warn("job fenced by a newer attempt", { jobId, attemptId });
      return { status: "fenced" };
    }
    const message = run.masker.mask(failure.message).slice(0, MAX_MESSAGE);
    run.shipper?.system(failure.layerKey, `build failed (${failure.reason}): ${message}`);
    await this.#finish(run.shipper, Promise.all([run.layerEvents, run.phases?.flush()]), {
      type: "failed",
      reason: failure.reason,
      message,
      layerKey: failure.layerKey,
      exitCode: failure.exitCode,
      logTail: (run.shipper?.tail() ?? []).slice(-100),
    });
    logger.warn("job failed", { jobId, attemptId, reason: failure.reason, message });
    return { status: "failed", reason: failure.reason, message };
  }

  /** Flushes the log and the ordered layer events, then sends the final event, all within `finalFlushMs`. */
  async #finish(shipper: LogShipper | null, chain: Promise<unknown>, final: EventBody): Promise<void> {
    const { config, logger } = this.#deps;
    const timer = setTimeout(() => this.#giveUp.abort(), config.finalFlushMs);
    try {
      // The end of the log and the layer events travel side by side; the final event waits for both.
      const closing = shipper?.close(config.finalFlushMs).then((lost) => {
        if (lost > 0) logger.error("could not deliver the end of the build log", { jobId: this.job.jobId, bytes: lost });
      });
      await Promise.all([closing, chain]);
      const outcome = await this.#events.deliver(final, this.#giveUp.signal);
      if (outcome !== "delivered") logger.error("could not deliver the final event", { jobId: this.job.jobId, type: final.type, outcome });
    } finally {
      clearTimeout(timer);
    }
  }

  #stopped(): JobFailure {
    switch (this.#stopReason) {
      case "cancelled":
        return new JobFailure("cancelled", "the build was cancelled");
      case "timeout":
        return new JobFailure("timeout", `the job passed its deadline (${new Date(this.job.deadlineMs).toISOString()})`);
      case "shutdown":
        return new JobFailure("infra", "the runner is shutting down; the job should be retried on another runner");
      default:
        return new JobFailure("infra", "the job was stopped");
    }
  }
}
