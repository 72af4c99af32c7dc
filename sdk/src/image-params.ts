/** Parameter types of `Image`'s factories and builder methods (Python keyword arguments, camelCased). */
import type { GpuSpec } from "@kiln-build/protocol";
import type { KilnClient } from "./client.ts";
import type { ImagePushParams } from "./image-push.ts";
import type { PipOptions } from "./lowering/python-packages.ts";
import type { IgnoreSpec } from "./pattern-matcher.ts";
import type { Secret } from "./secret.ts";
import type { Volume } from "./volume.ts";

/** Options most layer-adding methods accept. */
export type LayerParams = {
  /** Rebuild this layer (and, for most methods, later ones) even when cached. */
  forceBuild?: boolean;
  /** Secrets whose values the layer's RUN steps see as environment variables. */
  secrets?: Secret[];
  /** A GPU the layer's RUN steps can use, e.g. `"A100-80GB:2"`. */
  gpu?: GpuSpec;
  /** Extra environment variables for the build steps, sent as an inline secret. */
  env?: Record<string, string | null | undefined>;
};

/** Options of `Image.debianSlim`. */
export type ImageDebianSlimParams = { pythonVersion?: string; forceBuild?: boolean };
/** Options of `Image.micromamba`. */
export type ImageMicromambaParams = { pythonVersion?: string; forceBuild?: boolean };

/** Options of `Image.fromScratch`. */
export type ImageFromScratchParams = { forceBuild?: boolean };

/** Options of `Image.fromRegistry` and the cloud-registry factories. */
export type ImageFromRegistryParams = {
  /** Registry credentials (`REGISTRY_USERNAME`/`REGISTRY_PASSWORD` for `fromRegistry`). */
  secret?: Secret;
  setupDockerfileCommands?: string[];
  forceBuild?: boolean;
  /** A Python series to add from python-build-standalone, e.g. `"3.12"`. */
  addPython?: string;
};

/** Options of `Image.fromDockerfile`. */
export type ImageFromDockerfileParams = LayerParams & {
  /** Directory the Dockerfile's COPY/ADD sources are relative to (default: the current directory). */
  contextDir?: string;
  addPython?: string;
  buildArgs?: Record<string, string>;
  /** Files to leave out of the context; default: the Dockerfile's or the context's `.dockerignore`. */
  ignore?: IgnoreSpec;
  /** The stage to build (default: the last one). */
  target?: string;
};

/** Options of `pipInstall`. */
export type ImagePipInstallParams = LayerParams & PipOptions;
/** Options of `pipInstallPrivateRepos`; `gitUser` is required. */
export type ImagePipInstallPrivateReposParams = LayerParams & PipOptions & { gitUser: string };
/** Options of `pipInstallFromRequirements`. */
export type ImagePipInstallFromRequirementsParams = LayerParams & PipOptions;
/** Options of `pipInstallFromPyproject`. */
export type ImagePipInstallFromPyprojectParams = LayerParams & PipOptions & { optionalDependencies?: string[] };

/** Options of `poetryInstallFromFile`. */
export type ImagePoetryInstallFromFileParams = LayerParams & {
  poetryLockfile?: string;
  ignoreLockfile?: boolean;
  oldInstaller?: boolean;
  with?: string[];
  without?: string[];
  only?: string[];
  /** `"latest"` (default), an exact version, or `null` to use the poetry already in the image. */
  poetryVersion?: string | null;
};

/** Options of `uvPipInstall`. */
export type ImageUvPipInstallParams = LayerParams & PipOptions & { requirements?: string[]; uvVersion?: string };

/** Options of `uvSync`. */
export type ImageUvSyncParams = LayerParams & {
  groups?: string[];
  extras?: string[];
  frozen?: boolean;
  extraOptions?: string;
  uvVersion?: string;
};

/** Options of `micromambaInstall`. */
export type ImageMicromambaInstallParams = LayerParams & { specFile?: string; channels?: string[] };

/** Options of `runCommands`. */
export type ImageRunCommandsParams = LayerParams & {
  /**
   * Build caches mounted into every command of the layer, by path (Modal's `volumes`): each
   * becomes `RUN --mount=type=cache,id=<volume name>,target=<path>`, kept per workspace on the
   * runner and never part of the image.
   */
  volumes?: Record<string, Volume>;
};

/** Options of `dockerfileCommands`. */
export type ImageDockerfileCommandsParams = LayerParams & {
  /** Container path -> local file, sent in the context. */
  contextFiles?: Record<string, string>;
  contextDir?: string;
  ignore?: IgnoreSpec;
  buildArgs?: Record<string, string>;
};

/** Options of `addLocalFile`. */
export type ImageAddLocalFileParams = { copy?: boolean };
/** Options of `addLocalDir`. */
export type ImageAddLocalDirParams = { copy?: boolean; ignore?: IgnoreSpec };
/** Options of `addLocalPythonSource`. */
export type ImageAddLocalPythonSourceParams = { copy?: boolean; ignore?: IgnoreSpec };
/** Options of the deprecated `copyLocalDir`. */
export type ImageCopyLocalDirParams = { ignore?: IgnoreSpec };

/** Options of `image.build()`. */
export type ImageBuildParams = ImagePushParams & {
  client?: KilnClient;
  /** Point this tag at the built image. */
  tag?: string;
  /** Rebuild every layer and replace the cached results. */
  forceBuild?: boolean;
  /** Rebuild without reading or replacing the cache. */
  ignoreCache?: boolean;
  /**
   * Stream build output and upload progress to stderr (default true). `false` prints nothing
   * (the CLI's `--quiet` and `--json`).
   */
  logs?: boolean;
  /**
   * Colour in that output: `false` writes no escape sequence at all (the CLI's `--no-color`),
   * `true` forces colour even off a TTY. Default: `NO_COLOR`, `FORCE_COLOR`, else whether stderr is a TTY.
   */
  color?: boolean;
  /** Time limit of each build attempt, in seconds (60 to 86400; the server's default is 3600). */
  timeoutSeconds?: number;
  /**
   * Aborting asks the server to cancel the build (`POST /v1/builds/{id}/cancel`); `build()` then
   * rejects with an `ImageBuildError` whose `reason` is `cancelled` once the build has stopped.
   * Already aborted, `build()` rejects with the signal's reason before uploading anything.
   */
  signal?: AbortSignal;
  /**
   * Build for these platforms (e.g. `["linux/amd64", "linux/arm64"]`); overrides `withPlatforms`.
   * Two or more make a multi-platform image: one chain per platform, grouped in an OCI image
   * index (docs/platforms.md). Default: linux/amd64 only.
   */
  platforms?: readonly string[];
};

/** A Python build function: a function `name` defined in the local module `file`. */
export type PythonFunctionRef = { file: string; name: string };

/** Options of `runFunction`. */
export type ImageRunFunctionParams = LayerParams & {
  /** Positional arguments (JSON-serialisable). */
  args?: unknown[];
  /** Keyword arguments for a Python function, or a trailing options object for JavaScript. */
  kwargs?: Record<string, unknown>;
  /** Values the function reads as globals; JavaScript closures are not captured otherwise. */
  globals?: Record<string, unknown>;
  /** Maximum run time in seconds (default 3600); not part of the layer key. */
  timeout?: number;
};

/** Options of `describe`. */
export type ImageDescribeParams = {
  builderVersion?: string;
  /** Describe the chain as built for this platform (default linux/amd64): its layers carry it and have its keys. */
  platform?: string;
};

/** Options of `image.delete()`. */
export type ImageDeleteParams = { client?: KilnClient };

// ---- the one table of accepted keys, checked against the types above by the compiler -----

/** Every key of `T`, each exactly once: a missing or extra key is a compile error. */
type KeysOf<T> = { readonly [K in keyof Required<T>]: true };
const keys = <T>(k: KeysOf<T>): readonly string[] => Object.keys(k);

const LAYER: KeysOf<LayerParams> = { forceBuild: true, secrets: true, gpu: true, env: true };
const PIP: KeysOf<PipOptions> = { findLinks: true, indexUrl: true, extraIndexUrl: true, pre: true, extraOptions: true };
const REGISTRY: KeysOf<ImageFromRegistryParams> = { secret: true, setupDockerfileCommands: true, forceBuild: true, addPython: true };

/** The keys each method's options object may hold, by the method's name as users write it. */
export const PARAM_KEYS = {
  "Image.debianSlim": keys<ImageDebianSlimParams>({ pythonVersion: true, forceBuild: true }),
  "Image.micromamba": keys<ImageMicromambaParams>({ pythonVersion: true, forceBuild: true }),
  "Image.fromRegistry": keys<ImageFromRegistryParams>(REGISTRY),
  "Image.fromGcpArtifactRegistry": keys<ImageFromRegistryParams>(REGISTRY),
  "Image.fromAwsEcr": keys<ImageFromRegistryParams>(REGISTRY),
  "Image.fromScratch": keys<ImageFromScratchParams>({ forceBuild: true }),
  "Image.fromDockerfile": keys<ImageFromDockerfileParams>({
    ...LAYER,
    contextDir: true,
    addPython: true,
    buildArgs: true,
    ignore: true,
    target: true,
  }),
  pipInstall: keys<ImagePipInstallParams>({ ...LAYER, ...PIP }),
  pipInstallPrivateRepos: keys<ImagePipInstallPrivateReposParams>({ ...LAYER, ...PIP, gitUser: true }),
  pipInstallFromRequirements: keys<ImagePipInstallFromRequirementsParams>({ ...LAYER, ...PIP }),
  pipInstallFromPyproject: keys<ImagePipInstallFromPyprojectParams>({ ...LAYER, ...PIP, optionalDependencies: true }),
  poetryInstallFromFile: keys<ImagePoetryInstallFromFileParams>({
    ...LAYER,
    poetryLockfile: true,
    ignoreLockfile: true,
    oldInstaller: true,
    with: true,
    without: true,
    only: true,
    poetryVersion: true,
  }),
  uvPipInstall: keys<ImageUvPipInstallParams>({ ...LAYER, ...PIP, requirements: true, uvVersion: true }),
  uvSync: keys<ImageUvSyncParams>({ ...LAYER, groups: true, extras: true, frozen: true, extraOptions: true, uvVersion: true }),
  aptInstall: keys<LayerParams>(LAYER),
  micromambaInstall: keys<ImageMicromambaInstallParams>({ ...LAYER, specFile: true, channels: true }),
  runCommands: keys<ImageRunCommandsParams>({ ...LAYER, volumes: true }),
  dockerfileCommands: keys<ImageDockerfileCommandsParams>({
    ...LAYER,
    contextFiles: true,
    contextDir: true,
    ignore: true,
    buildArgs: true,
  }),
  addLocalFile: keys<ImageAddLocalFileParams>({ copy: true }),
  addLocalDir: keys<ImageAddLocalDirParams>({ copy: true, ignore: true }),
  addLocalPythonSource: keys<ImageAddLocalPythonSourceParams>({ copy: true, ignore: true }),
  copyLocalDir: keys<ImageCopyLocalDirParams>({ ignore: true }),
  runFunction: keys<ImageRunFunctionParams>({ ...LAYER, args: true, kwargs: true, globals: true, timeout: true }),
  describe: keys<ImageDescribeParams>({ builderVersion: true, platform: true }),
  delete: keys<ImageDeleteParams>({ client: true }),
  build: keys<ImageBuildParams>({
    client: true,
    tag: true,
    forceBuild: true,
    ignoreCache: true,
    logs: true,
    color: true,
    timeoutSeconds: true,
    signal: true,
    push: true,
    pushSecret: true,
    labels: true,
    annotations: true,
    source: true,
    revision: true,
    platforms: true,
  }),
} as const;

/** A method whose options object is checked. */
export type ParamMethod = keyof typeof PARAM_KEYS;

/**
 * Options Modal's methods take that Kiln's do not, and why; passing one is an error rather
 * than a silent drop. Keyed by the camelCased name.
 */
export const UNSUPPORTED_PARAMS: Readonly<Record<string, string>> = {
  cpu: "build steps run with the runner's CPUs; Kiln does not reserve CPU per step",
  memory: "build steps run with the runner's memory; Kiln does not reserve memory per step",
  timeout: "only runFunction has a per-step timeout; limit a whole build with image.build({ timeoutSeconds })",
  volumes: "only runCommands mounts volumes, as build cache mounts; move the step that needs the cache into runCommands(..., { volumes })",
  mounts: "use addLocalDir/addLocalFile with { copy: true } instead",
  networkFileSystems: "build steps cannot mount network file systems in Kiln",
  cloud: "Kiln picks the runner; there is no per-step cloud",
  region: "Kiln picks the runner; there is no per-step region",
  includeSource: "runFunction always sends the function's source",
};
