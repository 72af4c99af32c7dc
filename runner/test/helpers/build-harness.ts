/**
 * The scaffolding of a real-build test file: root and the build tools checked, a local
 * registry holding a locally made base image, private buildah storage, a work directory and
 * a started runner, all made once in `beforeAll` and removed in `afterAll`, plus a fresh
 * fake orchestrator for every test (closed after it).
 *
 * @example
 * const harness = useBuildHarness({ base: "busybox", config: { logFlushMs: 200 } });
 * it("builds", async () => {
 *   const job = makeJob({ orchestrator: harness.orchestrator, registryHost: harness.registry.host, layers: [...] });
 *   await dispatch(harness.runner.url, job, harness.secret);
 * });
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import type { RunnerConfigInput } from "../../src/config.ts";
import { silentLogger } from "../../src/logger.ts";
import { type RunningRunner, startRunner } from "../../src/runner.ts";
import { runnerPaths } from "../../src/state-dirs.ts";
import { type WorkspaceLocation, workspaceLocation } from "../../src/workspace-storage.ts";
import { busyboxRootfs, debianRootfs, pushRootfsImage, type TestStorage, testStorage } from "./base-images.ts";
import { FakeOrchestrator } from "./fake-orchestrator.ts";
import { testSecret } from "./jobs.ts";
import { startRegistry, type TestRegistry } from "./registry.ts";
import { requireRoot, requireTools } from "./tools.ts";

const BASES = {
  busybox: { tool: "busybox", reference: "base/busybox:1", rootfs: busyboxRootfs, setupTimeoutMs: 300_000 },
  // debootstrap takes minutes when the rootfs cache is cold.
  debian: { tool: "debootstrap", reference: "base/debian:bookworm", rootfs: debianRootfs, setupTimeoutMs: 900_000 },
} as const;

/** Everything a real-build test uses; filled in by the hooks, so read it inside hooks and tests only. */
export type BuildHarness = {
  registry: TestRegistry;
  storage: TestStorage;
  runner: RunningRunner;
  /** The runner's webhook secret (also the orchestrator's). */
  secret: string;
  workDir: string;
  /** The runner's secrets directory (RAM when the machine has /dev/shm). */
  secretsDir: string;
  /** Where the runner keeps the image storage of a workspace (default: the test jobs' `ws_test`). */
  workspaceStorage(workspaceId?: string): WorkspaceLocation;
  /** The base image in `registry`: `<host>/base/busybox:1` or `<host>/base/debian:bookworm`. */
  baseRef: string;
  /** The current test's fake orchestrator. */
  orchestrator: FakeOrchestrator;
};

/** Options of {@link useBuildHarness}. */
export type BuildHarnessParams = {
  /** The base image pushed to the registry (busybox is fast; debian is a debootstrap minbase). */
  base: keyof typeof BASES;
  /** Runner settings beyond the common ones (secret, address, directories, storage). */
  config?: Partial<RunnerConfigInput>;
  /** More setup once the base image is pushed, before the runner starts (other servers, directories); returns more runner settings. */
  prepare?: (harness: BuildHarness) => Promise<Partial<RunnerConfigInput>>;
  /** Tears down what `prepare` made, after the runner has closed. */
  cleanup?: () => Promise<void>;
};

/** Registers the hooks that build and tear down the harness, and returns it. Call once, at the top of a test file. */
export function useBuildHarness(params: BuildHarnessParams): BuildHarness {
  const base = BASES[params.base];
  const harness = {} as BuildHarness;
  // Teardown skips whatever a failed setup never made.
  const made: Partial<BuildHarness> = harness;

  beforeAll(async () => {
    requireRoot();
    requireTools("buildah", "skopeo", "docker-registry", base.tool);
    [harness.registry, harness.storage] = await Promise.all([startRegistry(), testStorage()]);
    harness.baseRef = `${harness.registry.host}/${base.reference}`;
    await pushRootfsImage(await base.rootfs(), harness.baseRef, harness.storage);
    harness.secret = testSecret();
    harness.workDir = await mkdtemp(path.join(tmpdir(), "kiln-runner-work-"));
    harness.secretsDir = await mkdtemp(path.join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "kiln-runner-secrets-"));
    harness.workspaceStorage = (workspaceId = "ws_test") => workspaceLocation(runnerPaths(harness.runner.config), workspaceId);
    const extra = await params.prepare?.(harness);
    harness.runner = await startRunner(
      {
        webhookSecrets: [harness.secret],
        host: "127.0.0.1",
        port: 0,
        workDir: harness.workDir,
        cacheDir: path.join(harness.workDir, "cache"),
        secretsDir: harness.secretsDir,
        storageRoot: harness.storage.root,
        storageRunRoot: harness.storage.runRoot,
        ...params.config,
        ...extra,
      },
      { logger: silentLogger },
    );
  }, base.setupTimeoutMs);

  beforeEach(async () => {
    harness.orchestrator = await FakeOrchestrator.start(harness.secret);
  });

  afterEach(async () => {
    await made.orchestrator?.close();
  });

  afterAll(async () => {
    await made.runner?.close();
    await params.cleanup?.();
    await made.registry?.stop();
    await made.storage?.dispose();
    if (made.workDir) await rm(made.workDir, { recursive: true, force: true });
    if (made.secretsDir) await rm(made.secretsDir, { recursive: true, force: true });
    // Closing a runner and removing vfs storage takes a while on a loaded machine.
  }, 120_000);

  return harness;
}
