// Secrets and a runner that dies (issue "Tenant isolation and trust"):
// a real runner builds, through the real stack, a RUN step that uses a secret and sleeps while
// the secret is mounted. Meanwhile the value must be on no persistent disk of the runner
// (work, cache and storage directories: buildah stages secret mounts in RAM). Then the runner
// is SIGKILLed with its build, and started again on the same directories: it must log that
// it removed what the job left (counts only), and afterwards the value must be nowhere in
// its state, RAM included.
import { spawnSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../runner/src/config.ts";
import { runnerPaths } from "../../runner/src/state-dirs.ts";
import { workspaceLocation } from "../../runner/src/workspace-storage.ts";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import { Image, Secret } from "../../sdk/src/index.ts";
import { disableFleet, newWorkspace, pushBaseImage, requireE2eTools, type StackInfo, sharedStack, type Tenant } from "../node/e2e-stack.ts";
import { filesContaining, type RunnerProcess, type RunnerState, registerFleet, runnerState, spawnRunner } from "./runner-process.ts";

const VALUE = `crash-secret-${Math.random().toString(36).slice(2)}-${Date.now()}`;
let stack: StackInfo;
let tenant: Tenant;
let state: RunnerState;
let runner: RunnerProcess | null = null;
let fleetId: string;
let base: string;

beforeAll(async () => {
  requireE2eTools("buildah", "busybox");
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "sec-crash");
  state = runnerState();
  runner = await spawnRunner(state);
  fleetId = await registerFleet(tenant, runner, "crashing", stack);
  base = await pushBaseImage(stack, tenant, await busyboxRootfs(), "busybox:1");
  await tenant.client.json("PUT", ["v1", "secrets", "crash-token"], { json: { values: { CRASH_TOKEN: VALUE } } });
}, 600_000);

afterAll(async () => {
  await runner?.stop();
  state?.dispose();
}, 120_000);

/** Where a secret mount is staged: a container's `userdata/secrets` in the workspace storage's (RAM) container directories. */
const isStagedMount = (file: string) => /\/containers\/[0-9a-f]{64}\/userdata\/secrets\//.test(file);

describe("a runner killed during a step that uses a secret", { timeout: 600_000 }, () => {
  it("never writes the value to disk, and a restart removes what the job left in RAM and logs it", async () => {
    const first = runner!;
    const building = Image.fromRegistry(base)
      .runCommands('test -n "$CRASH_TOKEN" && echo secret-step-running && sleep 300', { secrets: [Secret.fromName("crash-token")] })
      .build({ client: tenant.client, logs: false });
    let buildError: unknown = null;
    building.catch((error: unknown) => {
      buildError = error;
    });

    // Wait until the step runs with the secret mounted.
    const disk = [state.work, state.cache, state.storage];
    let inRam: string[] = [];
    for (let i = 0; i < 480 && !inRam.some(isStagedMount) && buildError === null; i++) {
      await sleep(250);
      inRam = filesContaining(VALUE, [state.secrets]);
    }
    expect(buildError).toBeNull();
    expect(inRam.filter(isStagedMount), first.log()).not.toEqual([]);
    await sleep(1_000);
    expect(filesContaining(VALUE, disk)).toEqual([]);

    // The machine loses the runner and its build mid-step: the job's files stay behind.
    await first.kill();
    runner = null;
    await disableFleet(tenant, fleetId); // the retries of the lost attempt have nowhere to go
    expect(filesContaining(VALUE, [state.secrets]).some(isStagedMount)).toBe(true);
    expect(filesContaining(VALUE, [state.secrets]).some((f) => f.includes("/jobs/"))).toBe(true);

    // The same directories, a new process.
    runner = await spawnRunner(state, { secret: first.secret });
    const line = runner
      .log()
      .split("\n")
      .map((l) => (l.startsWith("{") ? (JSON.parse(l) as Record<string, unknown>) : null))
      .find((l) => l?.msg === "removed what unfinished jobs of an earlier run left behind");
    expect(line, runner.log()).toMatchObject({ level: "warn" });
    expect(line!.jobSecretDirs).toBeGreaterThanOrEqual(1);
    expect(line!.secretFiles).toBeGreaterThanOrEqual(1);
    expect(line!.authFiles).toBeGreaterThanOrEqual(1);
    expect(line!.workDirs).toBeGreaterThanOrEqual(1);
    expect(line!.containers).toBeGreaterThanOrEqual(1);
    expect(runner.log()).not.toContain(VALUE);

    // Nothing of the value is left in the runner's state, and no working container either.
    expect(filesContaining(VALUE, [...disk, state.secrets])).toEqual([]);
    const who = await tenant.client.json<{ workspace: { id: string } }>("GET", ["v1", "whoami"]);
    const config = resolveConfig({
      webhookSecrets: [first.secret],
      workDir: state.work,
      cacheDir: state.cache,
      secretsDir: state.secrets,
      storageRoot: state.storage,
    });
    const storage = workspaceLocation(runnerPaths(config), who.workspace.id);
    const containers = spawnSync(
      "buildah",
      ["--root", storage.graphRoot, "--runroot", storage.runRoot, "--storage-driver", "vfs", "containers", "--quiet"],
      { encoding: "utf8" },
    );
    expect(containers.status).toBe(0);
    expect(containers.stdout.trim()).toBe("");
  });
});
