/**
 * Wires the runner together: GPU discovery, the build backend, the Python cache, the job
 * queue and the dispatch server. `startRunner` is what `kiln-runner serve` calls; tests and
 * the benchmark call it directly.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { type FleetPlatforms, KILN_VERSION, PROTOCOL_VERSION } from "@kiln-build/protocol";
import { createBackend } from "./backends/index.ts";
import type { BuildBackend } from "./backends/types.ts";
import { type RunnerConfig, type RunnerConfigInput, resolveConfig } from "./config.ts";
import { recoverFromCrash } from "./crash-recovery.ts";
import { advertise, detectGpus, type GpuDevice, GpuPool, gpusFromOverride } from "./gpu.ts";
import { JobQueue } from "./job-queue.ts";
import { type JobOutcome, JobRun } from "./job-run.ts";
import { createLogger, type Logger } from "./logger.ts";
import { detectPlatforms } from "./platforms.ts";
import { PythonCache } from "./python-standalone.ts";
import { createDispatchServer } from "./server.ts";
import { isRamBacked, type RunnerPaths, runnerPaths } from "./state-dirs.ts";
import { WorkspaceStorages } from "./workspace-storage.ts";

/**
 * The runner's release, printed by `kiln-runner --version` and reported in capabilities: the
 * Kiln release, since every package ships under one version. Kept under this name for
 * embedders that import it.
 */
export { KILN_VERSION as RUNNER_VERSION } from "@kiln-build/protocol";

/** Optional collaborators (tests inject these). */
export type RunnerDeps = {
  logger?: Logger;
  backend?: BuildBackend;
  fetch?: typeof fetch;
  /** Called with every finished job's outcome. */
  onOutcome?: (run: JobRun, outcome: JobOutcome) => void;
};

/** A running runner. */
export type RunningRunner = {
  config: RunnerConfig;
  /** Base URL of the dispatch endpoint (`http://host:port`). */
  url: string;
  /** Jobs running or queued. */
  jobs: ReadonlyMap<string, JobRun>;
  /** Stops accepting, stops running jobs (reported as `infra` so they are retried elsewhere) and closes. */
  close(): Promise<void>;
};

/** `GET /v1/capabilities`: what this runner builds (the platforms it detected included, decision 0023). */
function capabilities(config: RunnerConfig, backend: string, devices: GpuDevice[], platforms: FleetPlatforms) {
  return {
    version: KILN_VERSION,
    protocolVersion: PROTOCOL_VERSION,
    backend,
    gpus: advertise(devices),
    concurrency: config.concurrency,
    maxQueued: config.maxQueued,
    platforms,
  };
}

/** Starts the dispatch server and returns once it listens. */
export async function startRunner(input: RunnerConfigInput, deps: RunnerDeps = {}): Promise<RunningRunner> {
  const config = resolveConfig(input);
  const paths = runnerPaths(config);
  // Create the runner's directories now: a missing one would otherwise fail every job as `infra`.
  for (const dir of [paths.workDir, paths.cacheDir, paths.secretsDir]) await mkdir(dir, { recursive: true, mode: 0o700 });
  const logger = deps.logger ?? createLogger(config.logLevel);
  const backend = deps.backend ?? createBackend(config);
  const storages = new WorkspaceStorages(paths, config.storageDriver, backend, logger);
  await warnAboutStorage(paths, config.storageDriver, storages, logger);
  // Before the first job: what jobs of an earlier run left (secret files, containers, ...) goes.
  await recoverFromCrash(paths, storages, logger);
  const devices = config.gpus ? gpusFromOverride(config.gpus) : await detectGpus(config.nvidiaSmi);
  const gpuPool = new GpuPool(devices);
  const platforms = await detectPlatforms();
  const pythonCache = new PythonCache({
    mirror: config.pythonMirror,
    cacheDir: path.resolve(config.cacheDir),
    limits: { maxBytes: config.contextMaxBytes, maxEntries: config.contextMaxEntries, maxDepth: config.contextMaxDepth },
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  const queue = new JobQueue(config.concurrency, config.maxQueued);
  const jobs = new Map<string, JobRun>();
  // Jobs stopped while queued run outside the queue; shutdown waits for them too.
  const executions = new Set<Promise<void>>();
  const jobDeps = { config, backend, storages, gpuPool, pythonCache, logger, platforms, ...(deps.fetch ? { fetch: deps.fetch } : {}) };

  const server = createDispatchServer({
    secrets: config.webhookSecrets,
    maxBodyBytes: config.maxBodyBytes,
    logger,
    dispatch(job, context) {
      const run = new JobRun(job, jobDeps);
      const execute = () => {
        const execution = run.execute().then((outcome) => {
          jobs.delete(run.id);
          deps.onOutcome?.(run, outcome);
        });
        executions.add(execution);
        return execution.finally(() => executions.delete(execution));
      };
      // A job stopped while it waits leaves the queue and reports at once, without building.
      run.onStop = () => {
        if (queue.remove(run.id)) void execute();
      };
      const result = queue.offer(run.id, execute);
      if (result === "queued") {
        jobs.set(run.id, run);
        run.accept();
        logger.info("job accepted", {
          jobId: job.jobId,
          attemptId: job.attemptId,
          layers: job.layers.length,
          queued: queue.queued,
          requestId: context?.requestId ?? undefined,
        });
      }
      return result;
    },
    capabilities: () => capabilities(config, backend.name, devices, platforms),
    health: () => ({ ok: true, running: queue.running, queued: queue.queued }),
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  // The release and protocol version in the first line, so an upgrade can be checked in the journal.
  logger.info("kiln-runner listening", {
    url: `http://${host}:${address.port}`,
    version: KILN_VERSION,
    protocolVersion: PROTOCOL_VERSION,
    backend: backend.name,
    gpus: advertise(devices),
    concurrency: config.concurrency,
  });
  return {
    config,
    url: `http://${host}:${address.port}`,
    jobs,
    async close() {
      server.close();
      for (const run of jobs.values()) run.stop("shutdown");
      await queue.idle();
      await Promise.all([...executions]);
      server.closeAllConnections();
    },
  };
}

/** Warns when secrets would reach a disk, or when workspaces would share one image cache. */
async function warnAboutStorage(paths: RunnerPaths, driver: string, storages: WorkspaceStorages, logger: Logger): Promise<void> {
  if ((await isRamBacked(paths.secretsDir)) === false)
    logger.warn("the secrets directory is not on a RAM file system: secret values and registry logins of jobs are written to disk", {
      secretsDir: paths.secretsDir,
      fix: "point --secrets-dir at a tmpfs (the default is under /dev/shm)",
    });
  // Releases before per-workspace storage used the storage root itself, shared by every workspace.
  if (storages.perWorkspace && existsSync(path.join(paths.storageRoot, `${driver}-images`)))
    logger.warn(
      "the storage root still holds the shared storage of an earlier release, with images of several workspaces; it is no longer used",
      {
        storageRoot: paths.storageRoot,
        fix: `stop the runner and delete everything in ${paths.storageRoot} but workspaces/`,
      },
    );
  if (!storages.perWorkspace)
    logger.warn(
      "this backend keeps one image cache for every workspace: register the runner in one workspace only, never as a shared fleet",
    );
}
