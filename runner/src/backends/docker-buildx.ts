/**
 * `docker buildx build` (BuildKit through the Docker CLI): builds and pushes in one step
 * and writes the digest to a metadata file. Registry logins come from `$DOCKER_CONFIG`
 * (pointed at the job's private auth directory; `BUILDX_CONFIG` keeps the operator's
 * builder instances). GPUs are CDI devices on RUN steps (`RUN --device=`), which needs the
 * `device` entitlement.
 */
import path from "node:path";
import type { Command } from "../process.ts";
import { BuildkitBackendBase, pushOutput } from "./buildkit.ts";
import type { BuildBackend, BuildRequest } from "./types.ts";

/** Options of the docker buildx backend. */
export type DockerBuildxOptions = { bin?: string; builder?: string | undefined; buildxConfig?: string | undefined };

/** `docker buildx build --push`. */
export class DockerBuildxBackend extends BuildkitBackendBase implements BuildBackend {
  readonly name = "docker-buildx";
  readonly #options: DockerBuildxOptions;

  constructor(options: DockerBuildxOptions = {}) {
    super();
    this.#options = options;
  }

  build(request: BuildRequest): Command {
    const output = pushOutput(request);
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
        ...(request.stage ? ["--target", request.stage] : []),
        ...(request.platform ? ["--platform", request.platform] : []),
        ...request.secrets.flatMap((secret) => ["--secret", `id=${secret.id},src=${secret.path}`]),
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

  version(): Command {
    return { argv: [this.#options.bin ?? "docker", "buildx", "version"] };
  }
}
