/**
 * `docker buildx build` (BuildKit through the Docker CLI): builds and pushes in one step
 * and writes the digest to a metadata file. Registry logins come from `$DOCKER_CONFIG`
 * (pointed at the job's private auth directory; `BUILDX_CONFIG` keeps the operator's
 * builder instances). GPUs are CDI devices on RUN steps (`RUN --device=`), which needs the
 * `device` entitlement.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import type { GpuDevice } from "../gpu.ts";
import type { Command } from "../process.ts";
import { type BuildBackend, type BuildRequest, lastExitCode } from "./types.ts";

/** Options of the docker buildx backend. */
export type DockerBuildxOptions = { bin?: string; builder?: string | undefined; buildxConfig?: string | undefined };

const MetadataSchema = z.object({ "containerimage.digest": z.string().regex(/^sha256:[0-9a-f]{64}$/) }).loose();

/** Reads BuildKit's `--metadata-file` output. */
export async function readBuildkitDigest(file: string): Promise<string> {
  const parsed = MetadataSchema.safeParse(JSON.parse(await readFile(file, "utf8")));
  if (!parsed.success) throw new Error("the build's metadata file has no containerimage.digest");
  return parsed.data["containerimage.digest"];
}

/** BuildKit's CDI device flags for RUN steps. */
export function buildkitDeviceFlags(gpus: readonly GpuDevice[]): string[] {
  return gpus.map((gpu) => `--device=nvidia.com/gpu=${gpu.index}`);
}

/** BuildKit's message for a failed RUN step. */
export const BUILDKIT_STEP_FAILURE = /did not complete successfully: exit code: (\d+)/;

/** `docker buildx build --push`. */
export class DockerBuildxBackend implements BuildBackend {
  readonly name = "docker-buildx";
  readonly #options: DockerBuildxOptions;

  constructor(options: DockerBuildxOptions = {}) {
    this.#options = options;
  }

  runFlags(gpus: readonly GpuDevice[]): string[] {
    return buildkitDeviceFlags(gpus);
  }

  build(request: BuildRequest): Command {
    const output = `type=image,name=${request.target},push=true${request.targetInsecure ? ",registry.insecure=true" : ""}`;
    return {
      argv: [
        this.#options.bin ?? "docker",
        "buildx",
        "build",
        ...(this.#options.builder ? ["--builder", this.#options.builder] : []),
        "--progress",
        "plain",
        "--file",
        request.dockerfile,
        "--output",
        output,
        "--metadata-file",
        request.metadataFile,
        ...(request.pull === "always" ? ["--pull"] : []),
        ...(request.secretEnvFile ? ["--secret", `id=kiln-env,src=${request.secretEnvFile}`] : []),
        ...Object.entries(request.buildArgs).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
        ...(request.gpus.length > 0 ? ["--allow", "device"] : []),
        request.contextDir,
      ],
      env: {
        DOCKER_CONFIG: path.dirname(request.authFile),
        BUILDX_CONFIG: this.#options.buildxConfig ?? path.join(process.env.HOME ?? "/root", ".docker", "buildx"),
      },
    };
  }

  push(): null {
    return null;
  }

  digest(request: BuildRequest): Promise<string> {
    return readBuildkitDigest(request.metadataFile);
  }

  remove(): null {
    return null;
  }

  cleanup(): null {
    return null;
  }

  stepExitCode(tail: readonly string[]): number | null {
    return lastExitCode(tail, BUILDKIT_STEP_FAILURE);
  }

  version(): Command {
    return { argv: [this.#options.bin ?? "docker", "buildx", "version"] };
  }
}
