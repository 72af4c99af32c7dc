// GET /v1/builds/:id/timeline: the build's segments back to back from creation to the end (they add
// up to its wall time), each layer's phases from the runner's `phases` events in order and inside
// the attempt that ran them (runner clock offset corrected), cached layers with the build that made
// them, the failing step; served from R2 once the build's object is gone; 404 for other workspaces.
import { runInDurableObject } from "cloudflare:test";
import type { BuildTimeline, Job, RunnerPhase } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import {
  apiJson,
  buildStub,
  chain,
  completeJob,
  digestFor,
  newFleet,
  newTenant,
  nthJob,
  sendEvent,
  settle,
  submitImage,
  type TestFleet,
} from "./helpers.ts";

// The runner's clock runs an hour ahead of the orchestrator's: the timeline must not care.
const SKEW_MS = 3_600_000;

/** A runner reporting spans on its own (skewed) clock, one `phases` event per call, as the runner's PhaseRecorder does. */
function runnerClock(fleet: TestFleet, job: Job) {
  let span = 0;
  const open = new Map<number, RunnerPhase>();
  const send = async (phases: RunnerPhase[]) => {
    const result = await sendEvent(fleet, job, { type: "phases", sentAtMs: Date.now() + SKEW_MS, phases });
    expect(result.status).toBe(200);
  };
  return {
    async begin(layerKey: string, kind: RunnerPhase["kind"], step?: { step: number; totalSteps: number; line: string }) {
      const phase: RunnerPhase = {
        span: span++,
        layerKey,
        kind,
        step: step?.step ?? null,
        totalSteps: step?.totalSteps ?? null,
        line: step?.line ?? null,
        startedAtMs: Date.now() + SKEW_MS,
        endedAtMs: null,
        outcome: "running",
        exitCode: null,
      };
      open.set(phase.span, phase);
      await send([phase]);
      return phase.span;
    },
    async end(id: number, outcome: "ok" | "failed" = "ok", exitCode: number | null = null) {
      const phase = open.get(id)!;
      await send([{ ...phase, endedAtMs: Date.now() + SKEW_MS, outcome, exitCode }]);
    },
  };
}

async function timeline(token: string, buildId: string): Promise<{ status: number; body: BuildTimeline }> {
  return apiJson("GET", `/v1/builds/${buildId}/timeline`, { token });
}

describe("GET /v1/builds/:id/timeline", () => {
  it("shows a 3-layer build with a cached layer, a built one and a failing step, in order, adding up to its wall time", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const seed = `tl-${crypto.randomUUID()}`;
    // The root layer is cached by an earlier build.
    const first = await submitImage(t.token, chain(1, seed));
    await settle(first.body.buildId);
    await completeJob(fleet, await nthJob(fleet, 1));
    const submitted = await submitImage(t.token, chain(3, seed));
    const buildId = submitted.body.buildId as string;
    await settle(buildId);
    const job = await nthJob(fleet, 2);
    expect(job.layers.map((l) => l.index)).toEqual([1, 2]);
    const [built, failing] = job.layers as [Job["layers"][number], Job["layers"][number]];

    for (const type of ["accepted", "started"] as const) expect((await sendEvent(fleet, job, { type })).status).toBe(200);
    const runner = runnerClock(fleet, job);
    const pull = await runner.begin(built.key, "pull", { step: 1, totalSteps: 2, line: "FROM base" });
    await runner.end(pull);
    const step = await runner.begin(built.key, "step", { step: 2, totalSteps: 2, line: `RUN echo ${seed} layer 1` });
    await runner.end(step);
    const commit = await runner.begin(built.key, "commit");
    await runner.end(commit);
    const push = await runner.begin(built.key, "push");
    const pull2 = await runner.begin(failing.key, "pull", { step: 1, totalSteps: 2, line: "FROM base" });
    await runner.end(pull2);
    const failed = await runner.begin(failing.key, "step", { step: 2, totalSteps: 2, line: "RUN exit 3" });
    await runner.end(push);
    await registerLayerImage(job, built, digestFor(built.key));
    const reported = await sendEvent(fleet, job, {
      type: "layer_succeeded",
      layerKey: built.key,
      digest: digestFor(built.key),
      sizeBytes: 10,
      reference: built.target,
    });
    expect(reported.status).toBe(200);
    await runner.end(failed, "failed", 3);
    const end = await sendEvent(fleet, job, {
      type: "failed",
      reason: "build",
      message: "a build step of layer 3 exited with code 3",
      layerKey: failing.key,
      exitCode: 3,
      logTail: ["STEP 2/2: RUN exit 3", 'Error: building at STEP "RUN exit 3": exit status 3'],
    });
    expect(end.status).toBe(200);

    const { status, body } = await timeline(t.token, buildId);
    expect(status).toBe(200);
    expect(body.status).toBe("failed");
    expect(body.finishedAtMs).not.toBeNull();
    // Segments: back to back, in order, covering creation to the end.
    const kinds = body.segments.map((s) => s.kind);
    expect(kinds[0]).toBe("waiting");
    expect(kinds).toContain("queued");
    expect(kinds).toContain("dispatching");
    expect(kinds.at(-1)).toBe("running");
    expect(body.segments[0]!.startedAtMs).toBe(body.createdAtMs);
    for (let i = 1; i < body.segments.length; i++) expect(body.segments[i]!.startedAtMs).toBe(body.segments[i - 1]!.endedAtMs);
    expect(body.segments.at(-1)!.endedAtMs).toBe(body.finishedAtMs);
    const sum = body.segments.reduce((total, s) => total + s.durationMs, 0);
    expect(Math.abs(sum - body.wallMs)).toBeLessThanOrEqual(5);
    const dispatch = body.segments.find((s) => s.kind === "dispatching")!;
    expect(dispatch).toMatchObject({ attempt: 1, fleetId: fleet.id });

    // Layers: cached with its producer, built with every phase, failed at its step.
    expect(body.layers.map((l) => [l.index, l.state])).toEqual([
      [0, "cached"],
      [1, "built"],
      [2, "failed"],
    ]);
    expect(body.layers[0]!.cachedFrom).toBe(first.body.buildId);
    expect(body.layers[0]!.phases).toEqual([]);
    const phases1 = body.layers[1]!.phases;
    expect(phases1.map((p) => p.kind)).toEqual(["pull", "step", "commit", "push"]);
    expect(phases1.every((p) => p.outcome === "ok" && p.endedAtMs !== null)).toBe(true);
    expect(phases1[1]).toMatchObject({ step: 2, totalSteps: 2, line: `RUN echo ${seed} layer 1` });
    // On the orchestrator's clock, inside the attempt (the hour of skew is gone), in order.
    const running = body.segments.filter((s) => s.attempt === 1);
    const [from, to] = [running[0]!.startedAtMs, running.at(-1)!.endedAtMs!];
    const all = body.layers.flatMap((l) => l.phases);
    for (const p of all) {
      expect(p.startedAtMs).toBeGreaterThanOrEqual(from);
      expect(p.endedAtMs!).toBeLessThanOrEqual(to);
      expect(p.durationMs).toBe(p.endedAtMs! - p.startedAtMs);
    }
    for (let i = 1; i < phases1.length - 1; i++) expect(phases1[i]!.startedAtMs).toBeGreaterThanOrEqual(phases1[i - 1]!.endedAtMs!);
    const phases2 = body.layers[2]!.phases;
    expect(phases2.map((p) => [p.kind, p.outcome])).toEqual([
      ["pull", "ok"],
      ["step", "failed"],
    ]);
    expect(body.failedStep).toEqual({ layerKey: failing.key, layerIndex: 2, step: 2, line: "RUN exit 3", exitCode: 3 });
    // The failing step ended the build: it is on the critical path.
    expect(phases2[1]!.critical).toBe(true);

    // Another workspace cannot see it; a reader can.
    const other = await newTenant();
    expect((await timeline(other.token, buildId)).status).toBe(404);
    const reader = await newTenant(["images:read"]);
    expect((await timeline(reader.token, buildId)).status).toBe(404);
    expect((await apiJson("GET", "/v1/builds/bd-nope/timeline", { token: t.token })).status).toBe(404);

    // Once the object is gone (its storage is deleted 7 days after the end), R2 still answers the same.
    await runInDurableObject(buildStub(buildId), async (_instance: unknown, state: DurableObjectState) => {
      await state.storage.deleteAll();
    });
    const archived = await timeline(t.token, buildId);
    expect(archived.status).toBe(200);
    expect(archived.body).toEqual(body);
  });

  it("follows a running build: open segments and open phases", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const submitted = await submitImage(t.token, chain(1));
    await settle(submitted.body.buildId);
    const job = await nthJob(fleet, 1);
    await sendEvent(fleet, job, { type: "started" });
    const runner = runnerClock(fleet, job);
    await runner.begin(job.layers[0]!.key, "pull", { step: 1, totalSteps: 2, line: "FROM busybox:1.36" });
    const { status, body } = await timeline(t.token, submitted.body.buildId);
    expect(status).toBe(200);
    expect(body.finishedAtMs).toBeNull();
    expect(body.segments.at(-1)).toMatchObject({ kind: "running", endedAtMs: null });
    expect(body.layers[0]).toMatchObject({ state: "building" });
    expect(body.layers[0]!.phases).toMatchObject([{ kind: "pull", outcome: "running", endedAtMs: null }]);
    await completeJob(fleet, job);
    const done = await timeline(t.token, submitted.body.buildId);
    expect(done.body.status).toBe("succeeded");
    // A span the runner never closed counts as stopped when the build ended.
    expect(done.body.layers[0]!.phases[0]).toMatchObject({ kind: "pull", outcome: "stopped" });
  });

  it("refuses a phases event that breaks the contract", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const submitted = await submitImage(t.token, chain(1));
    await settle(submitted.body.buildId);
    const job = await nthJob(fleet, 1);
    const bad = await sendEvent(fleet, job, { type: "phases", sentAtMs: Date.now(), phases: [] });
    expect(bad.status).toBe(400);
  });
});
