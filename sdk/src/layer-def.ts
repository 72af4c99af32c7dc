/** The SDK-side definition of one layer, before it is lowered for a builder version. */
import { type GpuConfig, parseGpu } from "@kiln-build/protocol";
import type { LayerParams } from "./image-params.ts";
import type { Lowering } from "./lowering/types.ts";
import type { BuildFunction } from "./run-function.ts";
import { collectSecrets, type Secret } from "./secret.ts";

/** How the runner authenticates to the base image's registry. */
export type RegistryAuthDef = { kind: "static" | "gcp" | "aws"; secret: Secret };

/** Everything `describe()` needs to turn one builder call into a layer spec. */
export type LayerDef = {
  lower: Lowering;
  secrets: readonly Secret[];
  gpu: GpuConfig | null;
  forceBuild: boolean;
  buildArgs: Readonly<Record<string, string>>;
  registryAuth: RegistryAuthDef | null;
  /** Produces the build function's definition; lazy because a Python module is read from disk. */
  buildFunction: (() => BuildFunction) | null;
  /** A Python series to add from python-build-standalone (`addPython`). */
  addPython: string | null;
  /** The Dockerfile stage to build (`fromDockerfile({ target })`), when not the last. */
  dockerfileTarget?: string;
};

/** The parts of a layer that come from the common `LayerParams`, validated now. */
export function layerCommon(params: LayerParams): Omit<LayerDef, "lower"> {
  return {
    secrets: collectSecrets(params.secrets, params.env),
    gpu: parseGpu(params.gpu),
    forceBuild: !!params.forceBuild,
    buildArgs: {},
    registryAuth: null,
    buildFunction: null,
    addPython: null,
  };
}
