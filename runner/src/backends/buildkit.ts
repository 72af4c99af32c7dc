/**
 * What the two BuildKit backends (docker buildx, buildctl) share: the build pushes the image
 * itself and writes its digest to a metadata file, nothing is kept locally, GPUs are CDI
 * devices on RUN steps, and a failed step has BuildKit's message.
 */

import { readFile } from "node:fs/promises";
import { Sha256Digest } from "@kiln-build/protocol";
import { z } from "zod";
import type { GpuDevice } from "../gpu.ts";
import { type BuildRequest, lastExitCode } from "./types.ts";

const MetadataSchema = z.object({ "containerimage.digest": Sha256Digest }).loose();

/** BuildKit's message for a failed RUN step. */
const STEP_FAILURE = /did not complete successfully: exit code: (\d+)/;

/** The `--output` of a build that pushes `request.target`. */
export function pushOutput(request: BuildRequest): string {
  return `type=image,name=${request.target},push=true${request.targetInsecure ? ",registry.insecure=true" : ""}`;
}

/** The parts of `BuildBackend` every BuildKit backend answers the same way; subclasses add `name`, `build` and `version`. */
export class BuildkitBackendBase {
  runFlags(gpus: readonly GpuDevice[]): string[] {
    return gpus.map((gpu) => `--device=nvidia.com/gpu=${gpu.index}`);
  }

  /** Each layer is its own build: BuildKit keeps no local step images to name. */
  readonly chains = false;

  chainProgress(): null {
    return null;
  }

  tag(): null {
    return null;
  }

  imageConfig(): null {
    return null;
  }

  /** The build already pushed. */
  push(): null {
    return null;
  }

  /** Reads BuildKit's `--metadata-file` output. */
  async digest(request: BuildRequest): Promise<string> {
    const parsed = MetadataSchema.safeParse(JSON.parse(await readFile(request.metadataFile, "utf8")));
    if (!parsed.success) throw new Error("the build's metadata file has no containerimage.digest");
    return parsed.data["containerimage.digest"];
  }

  /** Nothing is kept in a local image store. */
  remove(): null {
    return null;
  }

  /** A stopped build leaves nothing behind on this machine. */
  cleanup(): null {
    return null;
  }

  stepExitCode(tail: readonly string[]): number | null {
    return lastExitCode(tail, STEP_FAILURE);
  }
}
