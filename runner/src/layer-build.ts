/**
 * One layer of a job, in phases the job can overlap (job-run.ts): `prepareLayerInputs`
 * downloads and safely extracts the context and places addPython; `layerPieces` prepares
 * runFunction, writes the secret environment file and renders the Dockerfile;
 * `buildLayer` runs the backend's build of one layer (holding its GPUs only for that;
 * chain-build.ts builds several); `publishLayer` pushes, reads the digest and checks the
 * pushed manifest in the registry.
 */
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import path from "node:path";
import { DEFAULT_PLATFORM, type Job, type JobLayer } from "@kiln-build/protocol";
import type { BuildBackend, BuildRequest, SecretFile } from "./backends/types.ts";
import { noteBaseDigests } from "./base-digests.ts";
import { pulledImages, pullTls } from "./base-images.ts";
import { BlobCache } from "./blob-cache.ts";
import type { RunnerConfig } from "./config.ts";
import { rebuildContext } from "./context-rebuild.ts";
import { DockerfileRenderError, renderDockerfile, SECRET_ENV_ID, secretEnvFile } from "./dockerfile.ts";
import { infraFailure, JobFailure, toJobFailure } from "./failure.ts";
import type { GpuDevice, GpuPool } from "./gpu.ts";
import { layerStage, stageProblem } from "./layer-stage.ts";
import type { LogShipper, OutputSink } from "./log-shipper.ts";
import { failedOutcome, type PhaseRecorder, trackSteps } from "./phase-recorder.ts";
import { type Command, runProcess } from "./process.ts";
import { pullRefusal } from "./pull-failure.ts";
import type { PythonCache } from "./python-standalone.ts";
import { type RegistryLogin, registryHostOf, writeAuthFile } from "./registry-auth.ts";
import { fetchManifest } from "./registry-client.ts";
import { prepareBuildFunction } from "./run-function.ts";
import type { StorageJanitor } from "./storage-janitor.ts";

/** What every layer of one job shares. */
export type LayerBuildEnv = {
  job: Job;
  config: RunnerConfig;
  backend: BuildBackend;
  gpuPool: GpuPool;
  pythonCache: PythonCache;
  shipper: LogShipper;
  /** Aborts on cancel, deadline, fencing or shutdown. */
  signal: AbortSignal;
  /** Scratch directory of the job (removed afterwards). */
  workDir: string;
  /** Private directory for secret files (tmpfs when available; removed afterwards). */
  secretDir: string;
  targetLogin: RegistryLogin;
  /** Logins of root layers' base images, by layer index. */
  baseLogins: Map<number, RegistryLogin>;
  janitor: StorageJanitor;
  /** Thrown when `signal` aborted: the stop reason as a failure. */
  stopped: () => JobFailure;
  fetch?: typeof fetch;
  /** Reports the layers' phases (absent in tests that do not follow them). */
  phases?: PhaseRecorder;
};

/** A pushed layer image. */
export type LayerResult = { digest: string; sizeBytes: number; reference: string };

/**
 * A layer built into local storage (BuildKit backends: already pushed), waiting for
 * {@link publishLayer}. Its auth file and metadata file must exist until then.
 */
export type BuiltLayer = {
  layer: JobLayer;
  request: BuildRequest;
  /** Settles once the image has its name (a chain's step image is tagged after the build). */
  ready?: Promise<void>;
  /** Set when the image is being pushed already (a chain publishes its own): what that push reports. */
  pushed?: Promise<LayerResult>;
};

/** A layer's own directory, with its build context unpacked in `contextDir`. */
export type LayerInputs = { dir: string; contextDir: string };

/**
 * Downloads and unpacks a layer's build context (and python-build-standalone) into the
 * layer's own directory. Nothing here depends on the layers below, so a job fetches each
 * layer's inputs while the layer before it builds.
 */
export async function prepareLayerInputs(env: LayerBuildEnv, layer: JobLayer, index: number): Promise<LayerInputs> {
  const dir = path.join(env.workDir, `layer-${index}`);
  const contextDir = path.join(dir, "context");
  await mkdir(path.join(dir, "dockerfile"), { recursive: true, mode: 0o700 });
  await mkdir(contextDir, { mode: 0o755 });
  const end = layer.context || layer.pythonStandalone ? env.phases?.begin(layer.key, "inputs") : undefined;
  try {
    await fetchInputs(env, layer, dir, contextDir);
    end?.("ok");
  } catch (error) {
    end?.(failedOutcome(error).outcome);
    throw error;
  }
  return { dir, contextDir };
}

/** Downloads and unpacks the context, and places python-build-standalone, into the layer's directory. */
async function fetchInputs(env: LayerBuildEnv, layer: JobLayer, dir: string, contextDir: string): Promise<void> {
  const { job, config, shipper, signal } = env;
  if (layer.context) {
    const context = layer.context;
    const cache = new BlobCache(path.join(path.resolve(config.cacheDir), "context-blobs"), config.contextCacheMaxBytes);
    const stats = await guard(env, () =>
      rebuildContext(context, contextDir, {
        token: job.callback.downloadToken,
        signal,
        workspaceId: job.workspaceId,
        cache,
        scratchDir: dir,
        limits: { maxBytes: config.contextMaxBytes, maxEntries: config.contextMaxEntries, maxDepth: config.contextMaxDepth },
        ...(env.fetch ? { fetch: env.fetch } : {}),
      }),
    );
    shipper.system(
      layer.key,
      `build context ${context.digest}: ${stats.entries} entries, ${stats.fetched} blobs downloaded (${stats.fetchedBytes} bytes), ${stats.cached} from the local cache`,
    );
    await cache.evict().catch(() => undefined);
  }
  if (layer.pythonStandalone) {
    shipper.system(layer.key, `adding python-build-standalone ${layer.pythonStandalone.version}+${layer.pythonStandalone.release}`);
    await guard(env, () => env.pythonCache.placeInto(layer.pythonStandalone!, contextDir, signal, layer.platform));
  }
}

/** What one layer adds to a build: its rendered Dockerfile, secret file, logins and pulled registries. */
export type LayerPieces = {
  dockerfileText: string;
  secret: SecretFile | null;
  logins: RegistryLogin[];
  pullHosts: string[];
};

/**
 * Prepares `layer` (at position `index` of the job) to build on `parentReference`: the
 * runFunction step, the secret environment file (as secret `secretId`), the Dockerfile with
 * `runFlags` on every RUN step, and what its base images need.
 */
export async function layerPieces(
  env: LayerBuildEnv,
  layer: JobLayer,
  index: number,
  parentReference: string | null,
  inputs: LayerInputs,
  options: { secretId: string; runFlags: string[]; continuesChain?: boolean },
): Promise<LayerPieces> {
  const { job } = env;
  const extraLines = layer.buildFunction ? [await prepareBuildFunction(layer, inputs.contextDir)] : [];
  let secret: SecretFile | null = null;
  if (layer.secrets.length > 0) {
    const values: Record<string, string> = {};
    for (const name of layer.secrets) {
      const value = job.secrets[name];
      if (!value) throw infraFailure(`the job does not carry the secret ${JSON.stringify(name)} that layer ${index} declares`);
      Object.assign(values, value);
    }
    secret = { id: options.secretId, path: path.join(env.secretDir, `layer-${index}.env`) };
    await writeFile(secret.path, secretEnvFile(values), { mode: 0o600 });
  }
  const stage = layerStage(layer);
  const missing = stage === null ? null : stageProblem(layer.dockerfileCommands, stage);
  if (missing) throw new JobFailure("build", missing, { layerKey: layer.key });
  let dockerfileText: string;
  try {
    dockerfileText = renderDockerfile({
      commands: layer.dockerfileCommands,
      parentReference,
      secretEnv: secret !== null,
      secretId: options.secretId,
      runFlags: options.runFlags,
      extraLines,
    });
  } catch (error) {
    if (error instanceof DockerfileRenderError) throw new JobFailure("build", error.message, { layerKey: layer.key });
    throw error;
  }
  const baseLogin = env.baseLogins.get(index);
  const pulls = pulledImages(layer.dockerfileCommands, { buildArgs: layer.buildArgs, parentReference });
  // Inside a chain, `FROM base` is the step before, not a pull.
  const images = options.continuesChain ? pulls.images.filter((image) => image !== parentReference) : pulls.images;
  return { dockerfileText, secret, logins: baseLogin ? [baseLogin] : [], pullHosts: images.map(registryHostOf) };
}

/**
 * The build request for `pieces` (one layer's, or a chain's joined): writes the Dockerfile
 * and the auth file into `dir`, and picks TLS and pull policy for the base images.
 */
export async function buildRequest(
  env: LayerBuildEnv,
  at: { layer: JobLayer; dir: string; contextDir: string; parentReference: string | null },
  pieces: {
    dockerfileText: string;
    secrets: SecretFile[];
    logins: RegistryLogin[];
    pullHosts: string[];
    gpus: GpuDevice[];
    stepImages: boolean;
  },
): Promise<BuildRequest> {
  const { job, config, backend, shipper } = env;
  const dockerfile = path.join(at.dir, "dockerfile", "Dockerfile");
  await writeFile(dockerfile, pieces.dockerfileText, { mode: 0o600 });
  const authDir = await mkdtemp(path.join(env.secretDir, "auth-"));
  const authFile = path.join(authDir, "config.json");
  await writeAuthFile(authFile, [env.targetLogin, ...pieces.logins]);
  const insecureHosts = job.registry.insecure ? [...config.insecureRegistries, job.registry.host] : config.insecureRegistries;
  const tls = pullTls(pieces.pullHosts, insecureHosts);
  if (tls.verifiedInsecure.length > 0) {
    shipper.system(
      at.layer.key,
      `this layer pulls from insecure registries (${tls.verifiedInsecure.join(", ")}) and from registries verified by TLS; ${backend.name} takes one TLS setting for every pull, so TLS is verified for all of them and those registries need a valid certificate (or pull every image of the layer from insecure registries)`,
    );
  }
  return {
    contextDir: at.contextDir,
    dockerfile,
    target: at.layer.target,
    buildArgs: at.layer.buildArgs,
    stage: layerStage(at.layer) ?? undefined,
    // Named even when default: buildah then looks bases up by platform, never taking another platform's pull of the name.
    platform: at.layer.platform ?? DEFAULT_PLATFORM,
    secrets: pieces.secrets,
    stepImages: pieces.stepImages,
    gpus: pieces.gpus,
    authFile,
    pullTlsVerify: tls.verify,
    targetInsecure: job.registry.insecure,
    pull: at.parentReference === null ? config.pullBase : "missing",
    metadataFile: path.join(at.dir, "digest"),
  };
}

/**
 * Builds `layer` (at position `index` of the job) alone on top of `parentReference` from its
 * prepared `inputs`, tagged as `layer.target`. GPUs are held only while the build runs;
 * nothing is pushed yet (BuildKit backends excepted: their build pushes).
 */
export async function buildLayer(
  env: LayerBuildEnv,
  layer: JobLayer,
  index: number,
  parentReference: string | null,
  inputs: LayerInputs,
): Promise<BuiltLayer> {
  const { job, backend, shipper, signal } = env;
  const gpus = layer.gpu ? await env.gpuPool.acquire(layer.gpu, signal).catch(() => Promise.reject(env.stopped())) : null;
  try {
    const devices = gpus?.devices ?? [];
    const pieces = await layerPieces(env, layer, index, parentReference, inputs, {
      secretId: SECRET_ENV_ID,
      runFlags: backend.runFlags(devices),
    });
    const request = await buildRequest(
      env,
      { layer, dir: inputs.dir, contextDir: inputs.contextDir, parentReference },
      { ...pieces, secrets: pieces.secret ? [pieces.secret] : [], gpus: [...devices], stepImages: false },
    );
    shipper.system(layer.key, `building layer ${index + 1}/${job.layers.length} with ${backend.name}`);
    const steps = env.phases?.steps(layer.key);
    const output = layerOutput(env, layer);
    try {
      await runTool(env, backend.build(request), "build", steps ? trackSteps(output, steps, layer.key) : output);
    } catch (error) {
      const { outcome, exitCode } = failedOutcome(error);
      steps?.end(outcome, exitCode);
      throw error;
    }
    steps?.end("ok");
    return { layer, request };
  } finally {
    gpus?.release();
  }
}

/**
 * Pushes a built layer (unless its build did), reads the pushed digest and checks that the
 * registry holds exactly that manifest. Every failure names the layer, whichever layer is
 * building meanwhile.
 */
export async function publishLayer(env: LayerBuildEnv, built: BuiltLayer): Promise<LayerResult> {
  const { job, backend, shipper, signal } = env;
  const { layer, request } = built;
  let end: ReturnType<PhaseRecorder["begin"]> | undefined;
  try {
    await built.ready;
    await noteBaseDigests(env, layer);
    end = env.phases?.begin(layer.key, "push");
    if (built.pushed) {
      const result = await built.pushed;
      shipper.system(layer.key, `pushed ${layer.target}@${result.digest}`);
      end?.("ok");
      return result;
    }
    if (signal.aborted) throw env.stopped();
    const push = backend.push(request);
    if (push) {
      shipper.system(layer.key, `pushing ${layer.target}`);
      await runTool(env, push, "push", layerOutput(env, layer));
    }
    const digest = await backend.digest(request).catch((error: unknown) => {
      throw infraFailure(`could not read the pushed digest of ${layer.target}: ${String(error)}`);
    });
    const manifest = await guard(env, () =>
      fetchManifest(layer.target, {
        login: env.targetLogin,
        insecure: job.registry.insecure,
        signal,
        ...(env.fetch ? { fetch: env.fetch } : {}),
      }),
    );
    if (manifest.digest !== digest) {
      throw infraFailure(`the registry holds ${manifest.digest} for ${layer.target}, but ${backend.name} reported pushing ${digest}`);
    }
    shipper.system(layer.key, `pushed ${layer.target}@${digest}`);
    end?.("ok");
    return { digest, sizeBytes: manifest.sizeBytes, reference: layer.target };
  } catch (error) {
    end?.(failedOutcome(error).outcome);
    const failure = toJobFailure(error);
    failure.layerKey ??= layer.key;
    throw failure;
  }
}

/** Where a tool's output goes, and which layer a failure is charged to (a chain's: the one building). */
export type ToolOutput = { stdout: OutputSink; stderr: OutputSink; failedLayer: () => JobLayer };

/** One layer's log streams. */
export function layerOutput(env: LayerBuildEnv, layer: JobLayer): ToolOutput {
  return { stdout: env.shipper.sink(layer.key, "stdout"), stderr: env.shipper.sink(layer.key, "stderr"), failedLayer: () => layer };
}

/** Runs a backend command with its output streamed to the log; classifies failures. */
export async function runTool(env: LayerBuildEnv, command: Command, what: "build" | "push", output: ToolOutput): Promise<void> {
  const lines: string[] = [];
  const tee = (sink: OutputSink): OutputSink => {
    let partial = "";
    return {
      write(data) {
        const parts = (partial + data.toString("utf8")).split("\n");
        partial = parts.pop() ?? "";
        lines.push(...parts);
        if (lines.length > 50) lines.splice(0, lines.length - 50);
        return sink.write(data);
      },
      waitForDrain: () => sink.waitForDrain(),
      end() {
        if (partial) lines.push(partial);
        sink.end();
      },
    };
  };
  let result: Awaited<ReturnType<typeof runProcess>>;
  const leave = await env.janitor.enter();
  try {
    result = await runProcess(command, {
      stdout: tee(output.stdout),
      stderr: tee(output.stderr),
      signal: env.signal,
      killGraceMs: env.config.killGraceMs,
    });
  } catch (error) {
    await leave(false);
    throw infraFailure(
      `could not start ${command.argv[0]}: ${error instanceof Error ? error.message : String(error)}; is it installed?`,
      error,
    );
  }
  // A build killed mid-way may leave a working container behind: clean up once idle. A
  // push only reads the image, so a stopped push leaves nothing to clean.
  await leave(what === "build" && (result.aborted || result.signal !== null));
  if (result.aborted || env.signal.aborted) throw env.stopped();
  if (result.exitCode === 0) return;
  const layer = output.failedLayer();
  const stepExit = what === "build" ? env.backend.stepExitCode(lines) : null;
  if (stepExit !== null) {
    // Layers are numbered from 1 in messages, as the SDK's errors and the status page number them.
    throw new JobFailure("build", `a build step of layer ${layer.index + 1} exited with code ${stepExit}`, {
      exitCode: stepExit,
      layerKey: layer.key,
    });
  }
  // An image this job's credentials cannot pull fails the same way everywhere: not retried.
  const refusal = what === "build" ? pullRefusal(lines) : null;
  if (refusal !== null) throw new JobFailure("build", refusal, { layerKey: layer.key });
  const status = result.exitCode ?? result.signal;
  const last = lines.findLast((line) => line.trim() !== "") ?? "no output";
  throw new JobFailure("infra", `${env.backend.name} ${what} exited with ${status}: ${last}`, { layerKey: layer.key });
}

/** Runs an I/O step; an abort becomes the stop reason, anything else an infra failure. */
async function guard<T>(env: LayerBuildEnv, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (env.signal.aborted) throw env.stopped();
    if (error instanceof JobFailure) throw error;
    throw infraFailure(error instanceof Error ? error.message : String(error), error);
  }
}
