/**
 * `buildctl build` against a running buildkitd: the Dockerfile frontend with the context
 * and Dockerfile as local sources, pushing to the target and writing the digest to a
 * metadata file. Logins come from `$DOCKER_CONFIG`; GPUs are CDI devices on RUN steps.
 */
import path from "node:path";
import type { Command } from "../process.ts";
import { BuildkitBackendBase, pushOutput } from "./buildkit.ts";
import type { BuildBackend, BuildRequest } from "./types.ts";

/** Options of the buildctl backend. */
export type BuildctlOptions = { bin?: string; addr?: string | undefined };

/** `buildctl build --frontend dockerfile.v0 --output type=image,push=true`. */
export class BuildctlBackend extends BuildkitBackendBase implements BuildBackend {
  readonly name = "buildctl";
  readonly #options: BuildctlOptions;

  constructor(options: BuildctlOptions = {}) {
    super();
    this.#options = options;
  }

  build(request: BuildRequest): Command {
    const output = pushOutput(request);
    return {
      argv: [
        ...this.#base(),
        "build",
        "--progress",
        "plain",
        "--frontend",
        "dockerfile.v0",
        "--local",
        `context=${request.contextDir}`,
        "--local",
        `dockerfile=${path.dirname(request.dockerfile)}`,
        "--opt",
        `filename=${path.basename(request.dockerfile)}`,
        ...(request.pull === "always" ? ["--opt", "image-resolve-mode=pull"] : []),
        ...(request.stage ? ["--opt", `target=${request.stage}`] : []),
        ...(request.platform ? ["--opt", `platform=${request.platform}`] : []),
        ...Object.entries(request.buildArgs).flatMap(([k, v]) => ["--opt", `build-arg:${k}=${v}`]),
        ...request.secrets.flatMap((secret) => ["--secret", `id=${secret.id},src=${secret.path}`]),
        ...(request.gpus.length > 0 ? ["--allow", "device"] : []),
        "--output",
        output,
        "--metadata-file",
        request.metadataFile,
      ],
      env: { DOCKER_CONFIG: path.dirname(request.authFile) },
    };
  }

  version(): Command {
    return { argv: [...this.#base(), "--version"] };
  }

  #base(): string[] {
    return [this.#options.bin ?? "buildctl", ...(this.#options.addr ? ["--addr", this.#options.addr] : [])];
  }
}
