/** Parameter types of `Image`'s factories and builder methods (Python keyword arguments, camelCased). */
import type { GpuSpec } from "@kiln-build/protocol";
import type { PipOptions } from "./lowering/python-packages.ts";
import type { IgnoreSpec } from "./pattern-matcher.ts";
import type { Secret } from "./secret.ts";

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
export type ImageRunCommandsParams = LayerParams;

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
export type ImageDescribeParams = { builderVersion?: string };
