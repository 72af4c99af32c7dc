/**
 * The Kiln reference runner as a library: `startRunner(config)` serves the dispatch
 * endpoint and builds jobs. The `kiln-runner` command (cli.ts) is a thin shell over it.
 */
export { type RunnerConfig, type RunnerConfigInput, RunnerConfigSchema, resolveConfig } from "./config.ts";
export { type RunnerDeps, type RunningRunner, RUNNER_VERSION, startRunner } from "./runner.ts";
export type { BuildBackend, BuildRequest } from "./backends/types.ts";
export { BuildahBackend } from "./backends/buildah.ts";
export { DockerBuildxBackend } from "./backends/docker-buildx.ts";
export { BuildctlBackend } from "./backends/buildctl.ts";
