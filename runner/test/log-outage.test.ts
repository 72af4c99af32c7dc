// The orchestrator connection dies in the middle of a real build: every log line still
// arrives exactly once and in order (sequence numbers without gaps), the buffered output
// spills to disk while the orchestrator is unreachable, and the job still reports success.
import { describe, expect, it } from "vitest";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { dispatch, layer, makeJob } from "./helpers/jobs.ts";

const LINES = 3000;
const harness = useBuildHarness({
  base: "busybox",
  config: {
    logFlushMs: 200,
    // Tiny memory buffer: an outage of a few seconds must spill to disk.
    logMemoryBytes: 4 * 1024,
    heartbeatMs: 500,
  },
});

/** A build step printing `line-1` .. `line-N`, pausing every 100 lines so it takes a few seconds. */
function noisyJob() {
  const script = `i=0; while [ $i -lt ${LINES} ]; do i=$((i+1)); echo "line-$i"; if [ $((i % 100)) -eq 0 ]; then sleep 0.2; fi; done`;
  return makeJob({
    orchestrator: harness.orchestrator,
    registryHost: harness.registry.host,
    layers: [layer(0, "noisy", [`FROM ${harness.baseRef}`, `RUN ${script}`], harness.registry.host)],
  });
}

function expectEveryLineOnce(log: string): void {
  const lines = log.split("\n").filter((l) => /^line-\d+$/.test(l));
  expect(lines.length).toBe(LINES);
  expect(lines).toEqual(Array.from({ length: LINES }, (_, i) => `line-${i + 1}`));
}

describe("orchestrator outage during a build", () => {
  it("loses no log line when the connection is killed mid-build", async () => {
    const { orchestrator } = harness;
    const job = noisyJob();
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    await orchestrator.waitFor(() => orchestrator.logEntries().some((e) => e.data.includes("line-300\n")), 120_000, "line-300");
    orchestrator.outage = true;
    orchestrator.dropConnections();
    const before = orchestrator.deliveries;
    await new Promise((r) => setTimeout(r, 3_000));
    expect(orchestrator.deliveries).toBeGreaterThan(before); // the runner kept retrying
    orchestrator.outage = false;
    expect(await orchestrator.final()).toMatchObject({ type: "succeeded", jobId: job.jobId });
    expectEveryLineOnce(orchestrator.logText());
    expect(orchestrator.problems).toEqual([]);
  }, 180_000);

  it("delivers the rest of the log, then the final event, when the orchestrator is down as the build ends", async () => {
    const { orchestrator } = harness;
    const job = noisyJob();
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    await orchestrator.waitFor(() => orchestrator.logEntries().some((e) => e.data.includes("line-2000\n")), 120_000, "line-2000");
    orchestrator.outage = true;
    orchestrator.dropConnections();
    // Long enough for the build to finish while nothing gets through.
    await new Promise((r) => setTimeout(r, 8_000));
    expect(orchestrator.ofType("succeeded")).toEqual([]);
    orchestrator.outage = false;
    expect(await orchestrator.final()).toMatchObject({ type: "succeeded", jobId: job.jobId });
    expectEveryLineOnce(orchestrator.logText());
    expect(orchestrator.ofType("layer_succeeded")).toHaveLength(1);
  }, 180_000);
});
