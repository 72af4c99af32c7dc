// Cancel (delivered in a heartbeat response) and the job deadline, on real buildah builds:
// the build gets SIGTERM, then SIGKILL after the grace period, no process survives, the job
// is reported `cancelled` / `timeout`, and its directories are removed.
import { execFileSync } from "node:child_process";
import { readdir } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { useBuildHarness } from "./helpers/build-harness.ts";
import type { FakeOrchestrator } from "./helpers/fake-orchestrator.ts";
import { dispatch, layer, makeJob } from "./helpers/jobs.ts";

const harness = useBuildHarness({ base: "busybox", config: { heartbeatMs: 300, logFlushMs: 100 } });

/** A job whose only step prints `marker` and then sleeps for a long time. */
function sleepingJob(marker: string, script = `echo ${marker}; sleep 300`, deadlineMs?: number) {
  return makeJob({
    orchestrator: harness.orchestrator,
    registryHost: harness.registry.host,
    layers: [layer(0, marker, [`FROM ${harness.baseRef}`, `RUN ${script}`], harness.registry.host)],
    deadlineMs,
  });
}

describe("cancel", () => {
  it("stops a running build when a heartbeat response asks for it, and reports cancelled", async () => {
    const { orchestrator } = harness;
    const marker = `sleeping-${Date.now()}`;
    const job = sleepingJob(marker);
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    await orchestrator.waitFor(() => logOf(orchestrator).includes(marker), 60_000, "the step to start");
    orchestrator.cancel = true;
    const final = await orchestrator.final(30_000);
    expect(final).toMatchObject({ type: "failed", reason: "cancelled", jobId: job.jobId });
    expect(orchestrator.ofType("layer_succeeded")).toEqual([]);
    await expectNoLeftovers(marker);
  }, 120_000);

  it("stops a step that ignores SIGTERM", async () => {
    const { orchestrator } = harness;
    const marker = `stubborn-${Date.now()}`;
    const job = sleepingJob(marker, `trap "" TERM; echo ${marker}; sleep 300; sleep 300`);
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    await orchestrator.waitFor(() => logOf(orchestrator).includes(marker), 60_000, "the step to start");
    orchestrator.cancel = true;
    const final = await orchestrator.final(30_000);
    expect(final).toMatchObject({ type: "failed", reason: "cancelled" });
    await expectNoLeftovers(marker);
  }, 120_000);

  it("cancels a queued job without building it", async () => {
    const { orchestrator } = harness;
    const marker = `first-${Date.now()}`;
    const first = sleepingJob(marker);
    const second = sleepingJob(`second-${Date.now()}`);
    expect((await dispatch(harness.runner.url, first, harness.secret)).status).toBe(202);
    expect((await dispatch(harness.runner.url, second, harness.secret)).status).toBe(202);
    await orchestrator.waitFor(() => logOf(orchestrator).includes(marker), 60_000, "the first job to start");
    // The queued job hears of its cancel in a heartbeat; the running one keeps the slot meanwhile.
    orchestrator.cancelJobs.add(second.jobId);
    await orchestrator.waitFor(() => orchestrator.ofType("failed").length === 1, 30_000, "the queued job to stop");
    orchestrator.cancelJobs.add(first.jobId);
    await orchestrator.waitFor(() => orchestrator.ofType("failed").length === 2, 30_000, "both jobs to stop");
    for (const job of [first, second]) {
      expect(orchestrator.ofType("failed").find((e) => e.jobId === job.jobId)).toMatchObject({ reason: "cancelled" });
    }
    // The second job never started building.
    expect(orchestrator.ofType("started").map((e) => e.jobId)).toEqual([first.jobId]);
    await expectNoLeftovers(marker);
  }, 120_000);
});

describe("deadline", () => {
  it("stops a build that runs past the job's deadline and reports timeout", async () => {
    const { orchestrator } = harness;
    const marker = `deadline-${Date.now()}`;
    const job = sleepingJob(marker, undefined, Date.now() + 8_000);
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    const final = await orchestrator.final(60_000);
    expect(final).toMatchObject({ type: "failed", reason: "timeout" });
    expect(logOf(orchestrator)).toContain(marker);
    await expectNoLeftovers(marker);
  }, 120_000);

  it("reports timeout without building when the deadline already passed", async () => {
    const { orchestrator } = harness;
    const job = sleepingJob(`late-${Date.now()}`, undefined, Date.now() - 1);
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    expect(await orchestrator.final(30_000)).toMatchObject({ type: "failed", reason: "timeout" });
    expect(orchestrator.logEntries()).toEqual([]);
  }, 60_000);
});

function logOf(fake: FakeOrchestrator): string {
  return fake
    .logEntries()
    .map((e) => e.data)
    .join("");
}

/** No process of the build survives and the job's directories are gone. */
async function expectNoLeftovers(marker: string): Promise<void> {
  for (let i = 0; i < 100 && harness.runner.jobs.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
  let processes = "";
  try {
    processes = execFileSync("pgrep", ["-af", marker], { encoding: "utf8" });
  } catch {
    processes = ""; // pgrep exits 1 when nothing matches
  }
  expect(processes.split("\n").filter((l) => l && !l.includes("pgrep"))).toEqual([]);
  expect((await readdir(harness.workDir)).filter((n) => n !== "cache")).toEqual([]);
  // No half-built working container is left in storage.
  const storage = harness.workspaceStorage();
  const containers = execFileSync(
    "buildah",
    ["--root", storage.graphRoot, "--runroot", storage.runRoot, "--storage-driver", "vfs", "containers", "--quiet"],
    { encoding: "utf8" },
  );
  expect(containers.trim()).toBe("");
}
