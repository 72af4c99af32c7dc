/**
 * The Kiln reference runner as a library: `startRunner(config)` serves the dispatch
 * endpoint and builds jobs. The `kiln-runner` command (cli.ts) is a thin shell over it.
 */

export { BuildahBackend } from "./backends/buildah.ts";
export { BuildctlBackend } from "./backends/buildctl.ts";
export { DockerBuildxBackend } from "./backends/docker-buildx.ts";
export type { BuildBackend, BuildRequest } from "./backends/types.ts";
export { type RunnerConfig, type RunnerConfigInput, RunnerConfigSchema, resolveConfig } from "./config.ts";
export { RUNNER_VERSION, type RunnerDeps, type RunningRunner, startRunner } from "./runner.ts";
