/** Chooses the build backend named in the runner's configuration. */
import type { RunnerConfig } from "../config.ts";
import { BuildahBackend } from "./buildah.ts";
import { BuildctlBackend } from "./buildctl.ts";
import { DockerBuildxBackend } from "./docker-buildx.ts";
import type { BuildBackend } from "./types.ts";

/** The backend `config.backend` names, configured from `config`. */
export function createBackend(config: RunnerConfig): BuildBackend {
  switch (config.backend) {
    case "buildah":
      return new BuildahBackend({
        bin: config.buildahBin,
        isolation: config.isolation,
        storageDriver: config.storageDriver,
        root: config.storageRoot,
        runRoot: config.storageRunRoot,
      });
    case "docker-buildx":
      return new DockerBuildxBackend({ bin: config.dockerBin, builder: config.buildxBuilder });
    case "buildctl":
      return new BuildctlBackend({ bin: config.buildctlBin, addr: config.buildkitAddr });
  }
}
