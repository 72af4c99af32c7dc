#!/usr/bin/env node
/**
 * `kiln-runner`: the command line of the reference runner.
 *
 *   KILN_RUNNER_WEBHOOK_SECRET=whsec_... npx kiln-runner serve --port 8080 --concurrency 2
 *
 * Every flag also reads a `KILN_RUNNER_*` environment variable (shown in `--help`); flags win.
 */
import { Command } from "commander";
import { createBackend } from "./backends/index.ts";
import { configFromFlags, type Flags, withRunnerOptions } from "./cli-options.ts";
import { resolveConfig } from "./config.ts";
import { advertise, detectGpus, gpusFromOverride } from "./gpu.ts";
import { captureProcess } from "./process.ts";
import { RUNNER_VERSION, startRunner } from "./runner.ts";

const program = new Command("kiln-runner")
  .description("Kiln reference runner: builds image layers dispatched by a Kiln orchestrator.")
  .version(RUNNER_VERSION);

withRunnerOptions(program.command("serve").description("serve the dispatch endpoint and build jobs")).action(async (flags: Flags) => {
  const runner = await startRunner(configFromFlags(flags));
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`kiln-runner: ${signal} received, stopping running jobs (again to force)\n`);
    void runner.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
});

withRunnerOptions(program.command("doctor").description("check that the backend and GPUs are usable, then print the capabilities")).action(
  async (flags: Flags) => {
    const config = resolveConfig(configFromFlags(flags));
    const backend = createBackend(config);
    let ok = true;
    let gpuWarning: string | null = null;
    try {
      const version = (await captureProcess(backend.version())).trim().split("\n")[0] ?? "";
      process.stdout.write(`backend ${backend.name}: ${version}\n`);
      const buildah = /buildah version (\d+)\.(\d+)/.exec(version);
      if (buildah && (Number(buildah[1]) < 1 || (Number(buildah[1]) === 1 && Number(buildah[2]) < 36)))
        gpuWarning = "buildah older than 1.36 cannot pass CDI GPU devices to builds (see docs/runner.md, GPU setup)";
    } catch (error) {
      ok = false;
      process.stdout.write(
        `backend ${backend.name}: NOT USABLE (${error instanceof Error ? error.message : String(error)})\n  install it (Debian: apt-get install buildah) or choose --backend\n`,
      );
    }
    const devices = config.gpus ? gpusFromOverride(config.gpus) : await detectGpus(config.nvidiaSmi);
    process.stdout.write(`gpus: ${JSON.stringify(advertise(devices))}\n`);
    if (devices.length > 0 && gpuWarning) process.stdout.write(`warning: ${gpuWarning}\n`);
    process.exitCode = ok ? 0 : 1;
  },
);

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`kiln-runner: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
