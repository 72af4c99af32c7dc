// POST /v1/runner/events: per-fleet signatures with ±5 min tolerance, replays, unknown attempts,
// stale attempts and malformed bodies all answered 4xx, and none of them changes the build.
// And planRunnerEvent (durable-objects/runner-events.ts), pure: what a `failed` event keeps.
import { SELF } from "cloudflare:test";
import type { RunnerEvent } from "@kiln-build/protocol";
import { newWebhookSecret, signWebhook } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import type { LayerRow } from "../../durable-objects/build-store.ts";
import { FAILURE_LOG_LINE_CHARS, planRunnerEvent } from "../../durable-objects/runner-events.ts";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import { buildStub, dispatchedBuild, newFleet, ORIGIN, sendEvent } from "./helpers.ts";
import { buildSnapshot } from "./object-probes.ts";

const statusOf = async (buildId: string) => (await buildSnapshot(buildStub(buildId)))!.build.machine.status;

describe("POST /v1/runner/events", () => {
  it("accepts a signed event for the current attempt and answers { ok, cancel }", async () => {
    const { fleet, job, buildId } = await dispatchedBuild(1);
    expect(await sendEvent(fleet, job, { type: "started" })).toMatchObject({ status: 200, body: { ok: true, cancel: false } });
    expect(await statusOf(buildId)).toBe("running");
  });

  it("refuses bad signatures, another fleet's secret, missing headers and timestamps outside ±5 minutes with 401", async () => {
    const { fleet, job, buildId } = await dispatchedBuild(1);
    const success = { type: "succeeded" } as const;
    const cases = [
      { options: { secret: newWebhookSecret() }, code: "bad_signature" },
      { options: { secret: (await newFleet(null)).secret }, code: "bad_signature" },
      { options: { now: new Date(Date.now() - 6 * 60_000) }, code: "stale_timestamp" },
      { options: { now: new Date(Date.now() + 6 * 60_000) }, code: "stale_timestamp" },
      { options: { headers: { "webhook-signature": "" } }, code: "missing_headers" },
    ];
    for (const { options, code } of cases) {
      const r = await sendEvent(fleet, job, success, options);
      expect(r.status, code).toBe(401);
      expect(r.body.error.code).toBe(code);
    }
    expect(await statusOf(buildId)).toBe("running");
  });

  it("refuses malformed bodies with 400 and unknown jobs or attempts like a bad signature (401)", async () => {
    const { fleet, job } = await dispatchedBuild(1);
    const raw = async (body: string) => {
      const response = await SELF.fetch(`${ORIGIN}/v1/runner/events`, {
        method: "POST",
        headers: { "content-type": "application/json", ...signWebhook(fleet.secret, "msg_x", body) },
        body,
      });
      return { status: response.status, body: (await response.json()) as any };
    };
    expect((await raw("{not json")).status).toBe(400);
    expect((await raw(JSON.stringify({ type: "heartbeat", jobId: job.jobId }))).body.error.code).toBe("invalid_request");
    expect((await raw(JSON.stringify({ type: "explode", jobId: job.jobId, attemptId: job.attemptId, fencingToken: 1 }))).status).toBe(400);
    expect(
      (await raw(JSON.stringify({ type: "heartbeat", jobId: job.jobId, attemptId: job.attemptId, fencingToken: 1, extra: 1 }))).status,
    ).toBe(400);
    const unknownJob = await sendEvent(fleet, { ...job, jobId: "bd-unknown" }, { type: "heartbeat" });
    expect(unknownJob).toMatchObject({ status: 401, body: { error: { code: "bad_signature" } } });
  });

  it("refuses a replay and a stale fencing token with 409, changing nothing", async () => {
    const { fleet, job, buildId } = await dispatchedBuild(1);
    const first = await sendEvent(fleet, job, { type: "accepted" }, { webhookId: "msg_once" });
    expect(first.status).toBe(200);
    const replay = await sendEvent(fleet, job, { type: "succeeded" }, { webhookId: "msg_once" });
    expect(replay).toMatchObject({ status: 409, body: { error: { code: "duplicate_event" } } });
    const stale = await sendEvent(fleet, { ...job, fencingToken: 7 }, { type: "succeeded" });
    expect(stale).toMatchObject({ status: 409, body: { error: { code: "stale_attempt" } } });
    expect(await statusOf(buildId)).toBe("running");
  });

  it("answers a replayed final event as a duplicate (delivered), not as stale", async () => {
    const { fleet, job, buildId } = await dispatchedBuild(1);
    await registerLayerImage(job, job.layers[0]!, `sha256:${"2".repeat(64)}`);
    await sendEvent(fleet, job, {
      type: "layer_succeeded",
      layerKey: job.layers[0]!.key,
      digest: `sha256:${"2".repeat(64)}`,
      sizeBytes: 1,
      reference: job.layers[0]!.target,
    });
    expect((await sendEvent(fleet, job, { type: "succeeded" }, { webhookId: "msg_final" })).status).toBe(200);
    expect(await statusOf(buildId)).toBe("succeeded");
    expect(await sendEvent(fleet, job, { type: "succeeded" }, { webhookId: "msg_final" })).toMatchObject({
      status: 409,
      body: { error: { code: "duplicate_event" } },
    });
  });

  it("refuses a layer the job does not build, and events after the build ended", async () => {
    const { fleet, job, buildId } = await dispatchedBuild(1);
    const wrong = await sendEvent(fleet, job, {
      type: "layer_succeeded",
      layerKey: "f".repeat(64),
      digest: `sha256:${"1".repeat(64)}`,
      sizeBytes: 1,
      reference: "x",
    });
    expect(wrong).toMatchObject({ status: 409, body: { error: { code: "unknown_layer" } } });
    await sendEvent(fleet, job, { type: "failed", reason: "build", message: "no", layerKey: null, exitCode: 1, logTail: [] });
    expect(await statusOf(buildId)).toBe("failed");
    expect((await sendEvent(fleet, job, { type: "heartbeat" })).body.error.code).toBe("stale_attempt");
  });
});

describe("planRunnerEvent of a failed event", () => {
  const KEYS = ["a".repeat(64), "b".repeat(64)];
  const layers: LayerRow[] = KEYS.map((key, index) => ({
    index,
    key,
    state: index === 0 ? "built" : "claimed",
    digest: null,
    reference: null,
    sizeBytes: null,
    released: false,
  }));
  const attempt = { attemptNo: 1, attemptId: "at-1", fleetId: "fl-1", deadlineMs: 0, dispatchedMs: 0, endedMs: null, tokenHashes: [] };
  const plan = (event: Partial<Extract<RunnerEvent, { type: "failed" }>>) => {
    const failed: RunnerEvent = {
      type: "failed",
      jobId: "bd-1",
      attemptId: "at-1",
      fencingToken: 1,
      reason: "build",
      message: "m",
      layerKey: null,
      exitCode: null,
      logTail: [],
      ...event,
    };
    const result = planRunnerEvent(
      { status: "running", attemptNo: 1, cancelRequested: false, failure: null },
      attempt,
      layers,
      failed,
      (key) => key,
    );
    if (!result.ok) throw new Error(result.error);
    return result.plan;
  };

  it("keeps the named layer, the step's exit code and the last 20 lines, each capped", () => {
    const tail = Array.from({ length: 25 }, (_, i) => `line ${i}`);
    // A cut never splits a surrogate pair: the emoji the limit falls inside is dropped whole.
    tail[24] = `${"y".repeat(FAILURE_LOG_LINE_CHARS - 2)}😀😀`;
    const { failure, machine } = plan({ layerKey: KEYS[1]!, exitCode: 7, logTail: tail });
    expect(machine).toEqual({ type: "runner_failed", reason: "build", message: "m (exit code 7)" });
    expect(failure).toMatchObject({ layer: KEYS[1], exitCode: 7 });
    expect(failure!.logTail).toHaveLength(20);
    expect(failure!.logTail[0]).toBe("line 5");
    expect(failure!.logTail[19]).toBe(`${"y".repeat(FAILURE_LOG_LINE_CHARS - 2)}…`);
  });

  it("guesses the first unbuilt layer for a step only, keeps no exit code but a step's, and names no layer for a cancel", () => {
    // A layer that is already built is not the one that failed.
    expect(plan({ layerKey: KEYS[0]! }).failure).toEqual({ layer: KEYS[1], exitCode: null, logTail: [] });
    expect(plan({ reason: "infra", exitCode: 125, logTail: ["denied"] }).failure).toEqual({
      layer: null,
      exitCode: null,
      logTail: ["denied"],
    });
    expect(plan({ reason: "infra", layerKey: KEYS[1]! }).failure).toMatchObject({ layer: KEYS[1] });
    expect(plan({ reason: "timeout" }).failure).toMatchObject({ layer: null });
    expect(plan({ reason: "cancelled", layerKey: KEYS[1]!, logTail: ["stopping"] }).failure).toEqual({
      layer: null,
      exitCode: null,
      logTail: ["stopping"],
    });
  });
});
