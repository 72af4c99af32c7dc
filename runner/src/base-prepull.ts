/**
 * Pulls a root layer's registry images while its build context downloads, instead of
 * leaving every pull to the build, which starts only once the context is unpacked. The
 * images are the ones the build pulls (`pulledImages`: ARGs expanded, stage names and
 * `scratch` left out), pulled into the build's storage with the login, TLS setting and
 * platform the build would use.
 *
 * The build waits for the pre-pull to settle, so the two never pull the same image side by
 * side. When every image the build pulls was pulled ahead, it builds with `--pull=missing`:
 * under `always` or `newer` the images were just fetched for this build, so pulling again
 * would only repeat it. After a pre-pull that failed (logged, never fatal) the build pulls
 * with the configured policy as it always did, so a refused or missing image fails it with
 * the same classification and message (pull-failure.ts). Policy `never` pulls nothing ahead.
 */
import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import type { Job } from "@kiln-build/protocol";
import type { BuildBackend, PullPolicy } from "./backends/types.ts";
import { insecurePullHosts, pulledImages, pullTls } from "./base-images.ts";
import type { PhaseRecorder } from "./phase-recorder.ts";
import { captureProcess } from "./process.ts";
import { type RegistryLogin, registryHostOf, writeAuthFile } from "./registry-auth.ts";
import type { StorageJanitor } from "./storage-janitor.ts";

/** What a pre-pull needs of its layer's environment (layer-build.ts's `LayerBuildEnv` has it all). */
export type PrepullEnv = {
  job: Job;
  config: { pullBase: PullPolicy; insecureRegistries: readonly string[] };
  backend: BuildBackend;
  shipper: { system(layerKey: string | null, line: string): void };
  /** Aborting kills the pulls. */
  signal: AbortSignal;
  /** Where the pre-pull's auth file lives until the pulls end. */
  secretDir: string;
  targetLogin: RegistryLogin;
  baseLogins: Map<number, RegistryLogin>;
  janitor: Pick<StorageJanitor, "enter">;
  phases?: Pick<PhaseRecorder, "begin"> | undefined;
};

/** A pre-pull under way. */
export type BasePrepull = {
  /** Settles, never rejecting, once every pull has ended: true when every image the build pulls was pulled. */
  settled: Promise<boolean>;
  /** Kills the pulls and waits for them to end. */
  stop(): Promise<boolean>;
};

/** What to pull ahead of a root layer's build, and how. */
export type PrepullPlan = {
  images: string[];
  policy: Exclude<PullPolicy, "never">;
  tlsVerify: boolean;
  platform: string | undefined;
  /** Whether `images` are all the registry images the job's builds pull (besides each layer's parent). */
  complete: boolean;
};

// Loose on purpose: it only keeps out what an ARG left unset makes of a name ("", ":1", "app:"),
// which the build reports better. Anything else it lets through fails its pre-pull at worst.
const REFERENCE = /^[A-Za-z0-9][\w.:/-]*[\w](?:@sha256:[a-f0-9]{64})?$/;
// A stage pulled for another platform (`FROM --platform=$BUILDPLATFORM ...`): pulling it for the
// build's platform would fetch the wrong image, so such layers are left to the build.
const STAGE_PLATFORM = /^\s*FROM\s[^\n]*--platform[=\s]/im;

/**
 * The pre-pull of the job's layer `index`, or null when nothing is pulled ahead: not a root
 * layer, policy `never`, a stage with its own platform, or no registry image. Pure.
 */
export function prepullPlan(job: Job, index: number, pullBase: PullPolicy, insecureHosts: readonly string[]): PrepullPlan | null {
  const layer = job.layers[index];
  if (!layer || index !== 0 || job.parentReference !== null || pullBase === "never") return null;
  const commands = layer.dockerfileCommands;
  // `FROM base` without a parent fails when the Dockerfile is rendered; there is nothing to pull.
  if (commands[0]?.trim() === "FROM base" || commands.some((line) => STAGE_PLATFORM.test(line))) return null;
  const wanted = pulledImages(commands, { buildArgs: layer.buildArgs, parentReference: null }).images;
  const images = wanted.filter((image) => REFERENCE.test(image));
  if (images.length === 0) return null;
  // Later layers build FROM the one below; anything else they pull, a chain's build pulls with this one's.
  const later = job.layers.slice(1).flatMap((next, i) => {
    const parent = job.layers[i]!.target;
    return pulledImages(next.dockerfileCommands, { buildArgs: next.buildArgs, parentReference: parent }).images.filter((x) => x !== parent);
  });
  // TLS as strict as any build of the job's pulls: a chain takes one setting for all its layers' registries.
  const tlsVerify = pullTls([...wanted, ...later].map(registryHostOf), insecureHosts).verify;
  const complete = images.length === wanted.length && later.length === 0;
  return { images, policy: pullBase, tlsVerify, platform: layer.platform, complete };
}

/** The build's pull policy, once the pre-pull (if any) has settled: it never pulls an image beside it. */
export async function buildPullPolicy(
  pullBase: PullPolicy,
  parentReference: string | null,
  basePull?: Promise<boolean>,
): Promise<PullPolicy> {
  const pulledAhead = await basePull;
  if (parentReference !== null) return "missing";
  return pulledAhead === true ? "missing" : pullBase;
}

/** Starts pulling the images of the job's layer `index` (see the module comment); null when nothing is pulled ahead. */
export function startBasePrepull(env: PrepullEnv, index: number): BasePrepull | null {
  const insecureHosts = insecurePullHosts(env.job.registry, env.config.insecureRegistries);
  const plan = env.backend.pull ? prepullPlan(env.job, index, env.config.pullBase, insecureHosts) : null;
  if (!plan) return null;
  const stopper = new AbortController();
  const settled = runPrepull(env, index, plan, AbortSignal.any([env.signal, stopper.signal]));
  return {
    settled,
    stop() {
      stopper.abort();
      return settled;
    },
  };
}

async function runPrepull(env: PrepullEnv, index: number, plan: PrepullPlan, signal: AbortSignal): Promise<boolean> {
  const layer = env.job.layers[index]!;
  const end = env.phases?.begin(layer.key, "pull");
  const startedMs = performance.now();
  env.shipper.system(layer.key, `pulling ${plan.images.join(", ")} while the layer's inputs are prepared`);
  let authDir: string | null = null;
  let pulled = false;
  let leave: ((stopped: boolean) => Promise<void>) | null = null;
  try {
    authDir = await mkdtemp(path.join(env.secretDir, "prepull-"));
    const authFile = path.join(authDir, "config.json");
    const baseLogin = env.baseLogins.get(index);
    await writeAuthFile(authFile, [env.targetLogin, ...(baseLogin ? [baseLogin] : [])]);
    leave = await env.janitor.enter();
    const request = { authFile, tlsVerify: plan.tlsVerify, platform: plan.platform, policy: plan.policy };
    const results = await Promise.all(plan.images.map((image) => pullOne(env, layer.key, { ...request, image }, signal)));
    pulled = results.every(Boolean);
  } catch (error) {
    if (!signal.aborted)
      env.shipper.system(layer.key, `could not pull ahead of the build (${lastLine(error)}); the build pulls them itself`);
  } finally {
    // The logins must not outlive the pulls.
    if (authDir) await rm(authDir, { recursive: true, force: true }).catch(() => undefined);
    await leave?.(false);
  }
  end?.(signal.aborted ? "stopped" : pulled ? "ok" : "failed");
  if (pulled) env.shipper.system(layer.key, `pulled ${plan.images.join(", ")} in ${((performance.now() - startedMs) / 1000).toFixed(1)} s`);
  return pulled && plan.complete;
}

/** Pulls one image; a failure is logged (masked by the shipper) and left to the build. */
async function pullOne(
  env: PrepullEnv,
  layerKey: string,
  request: Parameters<NonNullable<BuildBackend["pull"]>>[0],
  signal: AbortSignal,
): Promise<boolean> {
  try {
    await captureProcess(env.backend.pull!(request), signal);
    return !signal.aborted;
  } catch (error) {
    if (!signal.aborted) {
      env.shipper.system(layerKey, `could not pull ${request.image} ahead of the build (${lastLine(error)}); the build pulls it itself`);
    }
    return false;
  }
}

/** The tool's last line of output in a pull's error, without `<tool> exited with N: Error: `, cut to a log line's size. */
function lastLine(error: unknown): string {
  const lines = (error instanceof Error ? error.message : String(error)).split("\n").filter((line) => line.trim() !== "");
  const last = lines.at(-1)?.trim() ?? "no output";
  return last
    .replace(/^\S+ exited with \S+: /, "")
    .replace(/^Error: /, "")
    .slice(0, 300);
}
