/**
 * The runner's configuration: one zod schema with the defaults, filled from command-line
 * flags and `KILN_RUNNER_*` environment variables by the CLI (cli.ts) or passed directly
 * by embedders and tests.
 */
import { z } from "zod";

const Bytes = z.number().int().positive();
const Ms = z.number().int().positive();

/** Every runner setting with its default. */
export const RunnerConfigSchema = z
  .object({
    /** Address and port of the dispatch endpoint. */
    host: z.string().default("0.0.0.0"),
    port: z.number().int().min(0).max(65_535).default(8080),
    /** Fleet signing secrets (`whsec_...`): dispatches signed with any of them are accepted (rotation); events are signed with the first. */
    webhookSecrets: z.array(z.string().startsWith("whsec_")).min(1),
    /** Jobs built at once, and jobs waiting beyond those before dispatches are refused (503). */
    concurrency: z.number().int().min(1).default(1),
    maxQueued: z.number().int().min(0).default(16),
    /** Per-job scratch directories (removed after every job) and the download cache. */
    workDir: z.string().default("/var/lib/kiln-runner/work"),
    cacheDir: z.string().default("/var/cache/kiln-runner"),
    /**
     * RAM directory (tmpfs) for everything that may hold a secret value: per-job secret and auth
     * files, buildah's container directories (state-dirs.ts). Default: `/dev/shm/kiln-runner-<hash of workDir>`.
     */
    secretsDir: z.string().optional(),
    backend: z.enum(["buildah", "docker-buildx", "buildctl"]).default("buildah"),
    buildahBin: z.string().default("buildah"),
    isolation: z.enum(["chroot", "oci", "rootless"]).default("chroot"),
    storageDriver: z.string().default("vfs"),
    /** One buildah storage per workspace under `<storageRoot>/workspaces/` (default: `storage` beside `workDir`). */
    storageRoot: z.string().optional(),
    /** Parent of the workspaces' run roots (default: in `secretsDir`). */
    storageRunRoot: z.string().optional(),
    dockerBin: z.string().default("docker"),
    buildxBuilder: z.string().optional(),
    buildctlBin: z.string().default("buildctl"),
    buildkitAddr: z.string().optional(),
    /** Registries reached over plain HTTP or without certificate checks when pulling base images (on-premises mirrors). */
    insecureRegistries: z.array(z.string().min(1)).default([]),
    /** When root layers re-pull their base image: `missing` (default), `newer`, `always`, `never`. */
    pullBase: z.enum(["missing", "always", "newer", "never"]).default("missing"),
    /** GPU discovery; `gpus` ("H100:8") overrides what nvidia-smi reports. */
    nvidiaSmi: z.string().default("nvidia-smi"),
    gpus: z.string().optional(),
    /** python-build-standalone mirror for `addPython`. */
    pythonMirror: z.string().default("https://github.com/astral-sh/python-build-standalone/releases/download"),
    /** Context extraction limits (tar bombs). */
    contextMaxBytes: Bytes.default(10 * 1024 ** 3),
    contextMaxEntries: z.number().int().positive().default(1_000_000),
    contextMaxDepth: z.number().int().positive().default(64),
    /** Size bound of the local cache of context file blobs (under `cacheDir`), least recently used evicted first. */
    contextCacheMaxBytes: Bytes.default(20 * 1024 ** 3),
    /** Log streaming. */
    logFlushMs: Ms.default(1_000),
    logChunkBytes: Bytes.max(1024 * 1024).default(1024 * 1024),
    logMemoryBytes: Bytes.default(8 * 1024 * 1024),
    logSpillMaxBytes: Bytes.default(1024 ** 3),
    /** How long a finished job keeps trying to deliver its remaining log and final event. */
    finalFlushMs: Ms.default(10 * 60 * 1000),
    heartbeatMs: Ms.default(15_000),
    /** SIGTERM-to-SIGKILL grace when cancelling a build. */
    killGraceMs: Ms.default(10_000),
    /** Secret values shorter than this are not masked in logs. */
    maskMinLength: z.number().int().min(1).default(4),
    /** ECR API endpoint template (`{region}` is substituted). */
    ecrEndpoint: z.string().default("https://api.ecr.{region}.amazonaws.com/"),
    /** PEM file of extra CA certificates trusted for registry TLS by pushes to external registries (decision 0019). */
    caFile: z.string().min(1).optional(),
    /** Build runs of consecutive layers in one backend session where that gives the same images (chain-plan.ts). */
    chainLayers: z.boolean().default(true),
    /** Keep built layer images in local storage after the job (default: remove; they are in the registry). */
    keepImages: z.boolean().default(false),
    /** Largest dispatch body accepted. */
    maxBodyBytes: Bytes.default(64 * 1024 * 1024),
    logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
  })
  .strict();

/** The runner's resolved configuration. */
export type RunnerConfig = z.infer<typeof RunnerConfigSchema>;

/** What callers may pass: everything but the secrets is optional. */
export type RunnerConfigInput = z.input<typeof RunnerConfigSchema>;

/** Validates and completes a configuration; throws with every problem listed. */
export function resolveConfig(input: RunnerConfigInput): RunnerConfig {
  const parsed = RunnerConfigSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(config)"}: ${i.message}`).join("\n");
    throw new Error(`invalid runner configuration:\n${problems}`);
  }
  return parsed.data;
}
