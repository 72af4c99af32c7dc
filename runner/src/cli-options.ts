/**
 * The runner's command-line flags: each one also reads a `KILN_RUNNER_*` environment
 * variable, and maps onto one field of the config schema (config.ts).
 */
import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { RunnerConfigInput } from "./config.ts";

const int = (value: string): number => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("expected a whole number");
  return Number(value);
};
const opt = (flags: string, description: string, env: string) => new Option(flags, description).env(`KILN_RUNNER_${env}`);

/** Adds the flags shared by `serve` and `doctor` to `command`. */
export function withRunnerOptions(command: Command): Command {
  return command
    .addOption(
      opt(
        "--webhook-secret <secrets>",
        "fleet signing secret(s), comma-separated (whsec_...); prefer the env var or a file",
        "WEBHOOK_SECRET",
      ),
    )
    .addOption(opt("--webhook-secret-file <path>", "file with one signing secret per line", "WEBHOOK_SECRET_FILE"))
    .addOption(opt("--host <host>", "address to listen on (default 0.0.0.0)", "HOST"))
    .addOption(opt("--port <port>", "port to listen on (default 8080)", "PORT").argParser(int))
    .addOption(opt("--concurrency <n>", "jobs built at once (default 1)", "CONCURRENCY").argParser(int))
    .addOption(opt("--max-queued <n>", "jobs waiting before dispatches are refused (default 16)", "MAX_QUEUED").argParser(int))
    .addOption(opt("--work-dir <dir>", "per-job scratch space (default /var/lib/kiln-runner/work)", "WORK_DIR"))
    .addOption(opt("--cache-dir <dir>", "download cache (default /var/cache/kiln-runner)", "CACHE_DIR"))
    .addOption(
      opt(
        "--secrets-dir <dir>",
        "RAM directory for secret files and buildah's containers (default /dev/shm/kiln-runner-<hash>)",
        "SECRETS_DIR",
      ),
    )
    .addOption(opt("--backend <name>", "build backend", "BACKEND").choices(["buildah", "docker-buildx", "buildctl"]))
    .addOption(opt("--buildah <path>", "buildah binary", "BUILDAH"))
    .addOption(opt("--isolation <type>", "buildah isolation (default chroot)", "ISOLATION").choices(["chroot", "oci", "rootless"]))
    .addOption(opt("--storage-driver <driver>", "buildah storage driver (default vfs)", "STORAGE_DRIVER"))
    .addOption(
      opt(
        "--storage-root <dir>",
        "per-workspace buildah storages go under <dir>/workspaces (default: storage beside the work dir)",
        "STORAGE_ROOT",
      ),
    )
    .addOption(
      opt("--storage-run-root <dir>", "parent of the workspaces' storage run roots (default: in the secrets dir)", "STORAGE_RUN_ROOT"),
    )
    .addOption(opt("--docker <path>", "docker binary (docker-buildx backend)", "DOCKER"))
    .addOption(opt("--buildx-builder <name>", "buildx builder instance", "BUILDX_BUILDER"))
    .addOption(opt("--buildctl <path>", "buildctl binary (buildctl backend)", "BUILDCTL"))
    .addOption(opt("--buildkit-addr <addr>", "buildkitd address, e.g. unix:///run/buildkit/buildkitd.sock", "BUILDKIT_ADDR"))
    .addOption(
      opt(
        "--insecure-registry <hosts>",
        "base-image registries pulled over plain HTTP / without TLS checks, comma-separated",
        "INSECURE_REGISTRY",
      ),
    )
    .addOption(
      opt("--pull-base <policy>", "when root layers re-pull their base image", "PULL_BASE").choices([
        "missing",
        "always",
        "newer",
        "never",
      ]),
    )
    .addOption(opt("--nvidia-smi <path>", "nvidia-smi binary used to discover GPUs", "NVIDIA_SMI"))
    .addOption(opt("--gpus <spec>", 'GPUs to advertise instead of asking nvidia-smi, e.g. "H100:8"', "GPUS"))
    .addOption(opt("--python-mirror <url>", "python-build-standalone mirror for addPython", "PYTHON_MIRROR"))
    .addOption(opt("--context-max-bytes <n>", "largest extracted build context", "CONTEXT_MAX_BYTES").argParser(int))
    .addOption(opt("--context-max-entries <n>", "most entries in a build context", "CONTEXT_MAX_ENTRIES").argParser(int))
    .addOption(opt("--context-max-depth <n>", "deepest path in a build context", "CONTEXT_MAX_DEPTH").argParser(int))
    .addOption(
      opt("--context-cache-max-bytes <n>", "size bound of the local cache of context file blobs", "CONTEXT_CACHE_MAX_BYTES").argParser(int),
    )
    .addOption(opt("--log-spill-max-bytes <n>", "log bytes spilled to disk before builds are paused", "LOG_SPILL_MAX_BYTES").argParser(int))
    .addOption(opt("--kill-grace-ms <n>", "SIGTERM-to-SIGKILL grace when cancelling", "KILL_GRACE_MS").argParser(int))
    .addOption(opt("--mask-min-length <n>", "shortest secret value masked in logs (default 4)", "MASK_MIN_LENGTH").argParser(int))
    .addOption(opt("--ecr-endpoint <url>", "AWS ECR API endpoint template ({region} is substituted)", "ECR_ENDPOINT"))
    .addOption(opt("--ca-file <path>", "PEM CA certificate(s) trusted for pushes to external registries, beside the system's", "CA_FILE"))
    .addOption(opt("--keep-images", "keep built images in local storage after each job", "KEEP_IMAGES"))
    .addOption(
      opt("--no-chain-layers", "build every layer in its own backend session (default: runs of layers share one)", "NO_CHAIN_LAYERS"),
    )
    .addOption(opt("--log-level <level>", "runner log level", "LOG_LEVEL").choices(["debug", "info", "warn", "error"]));
}

/** Parsed flag values, keyed by commander's camel-cased names. */
export type Flags = Record<string, string | number | boolean | undefined>;

/** Maps parsed flags to the config schema's input, leaving unset ones to the defaults. */
export function configFromFlags(flags: Flags): RunnerConfigInput {
  const secrets = [
    ...String(flags.webhookSecret ?? "").split(/[\s,]+/),
    ...(flags.webhookSecretFile ? readFileSync(String(flags.webhookSecretFile), "utf8").split(/\s+/) : []),
  ].filter(Boolean);
  const pick = <K extends string>(map: Record<K, string>) =>
    Object.fromEntries(
      Object.entries(map).flatMap(([key, flag]) => (flags[flag as string] === undefined ? [] : [[key, flags[flag as string]]])),
    );
  return {
    webhookSecrets: secrets,
    ...pick({
      host: "host",
      port: "port",
      concurrency: "concurrency",
      maxQueued: "maxQueued",
      workDir: "workDir",
      cacheDir: "cacheDir",
      secretsDir: "secretsDir",
      backend: "backend",
      buildahBin: "buildah",
      isolation: "isolation",
      storageDriver: "storageDriver",
      storageRoot: "storageRoot",
      storageRunRoot: "storageRunRoot",
      dockerBin: "docker",
      buildxBuilder: "buildxBuilder",
      buildctlBin: "buildctl",
      buildkitAddr: "buildkitAddr",
      pullBase: "pullBase",
      nvidiaSmi: "nvidiaSmi",
      gpus: "gpus",
      pythonMirror: "pythonMirror",
      contextMaxBytes: "contextMaxBytes",
      contextMaxEntries: "contextMaxEntries",
      contextMaxDepth: "contextMaxDepth",
      contextCacheMaxBytes: "contextCacheMaxBytes",
      logSpillMaxBytes: "logSpillMaxBytes",
      killGraceMs: "killGraceMs",
      maskMinLength: "maskMinLength",
      ecrEndpoint: "ecrEndpoint",
      caFile: "caFile",
      logLevel: "logLevel",
    }),
    ...(flags.insecureRegistry
      ? {
          insecureRegistries: String(flags.insecureRegistry)
            .split(",")
            .map((h) => h.trim())
            .filter(Boolean),
        }
      : {}),
    ...(flags.keepImages === undefined
      ? {}
      : { keepImages: flags.keepImages === true || flags.keepImages === "true" || flags.keepImages === "1" }),
    ...(flags.chainLayers === false || flags.chainLayers === "false" || flags.chainLayers === "0" ? { chainLayers: false } : {}),
  } as RunnerConfigInput;
}
