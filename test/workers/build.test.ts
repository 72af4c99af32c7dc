// The Build object's lifecycle: leases and retries driven through runDurableObjectAlarm (timers
// made due by hand, since time does not pass in workerd), fencing of stale attempts, refusals and
// backoff, build failures never retried, deadlines, cancel delivered in a heartbeat response,
// fleet choice by GPU, and state surviving eviction.
import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  apiJson,
  buildStub,
  chain,
  completeJob,
  dispatches,
  layer,
  makeDue,
  newFleet,
  newTenant,
  nthJob,
  sendEvent,
  settle,
  submitImage,
} from "./helpers.ts";
import { buildSnapshot } from "./object-probes.ts";

async function started(options: { fleets?: number; mode?: "accept" | "refuse" } = {}) {
  const t = await newTenant();
  const fleets = [];
  for (let i = 0; i < (options.fleets ?? 1); i++) fleets.push(await newFleet(t.workspaceId, { mode: options.mode ?? "accept" }));
  const r = await submitImage(t.token, chain(2));
  await settle(r.body.buildId);
  return { t, fleets, buildId: r.body.buildId as string, imageId: r.body.id as string };
}

async function fire(buildId: string, timer: string) {
  const stub = buildStub(buildId);
  await makeDue(stub, timer);
  expect(await runDurableObjectAlarm(stub)).toBe(true);
  return (await buildSnapshot(stub))!;
}

describe("leases and retries", () => {
  it("retries a lost runner on another fleet after 10 s, fencing the old attempt", async () => {
    const { fleets, buildId } = await started({ fleets: 2 });
    const [f1, f2] = fleets as [(typeof fleets)[0], (typeof fleets)[0]];
    const job1 = await nthJob(f1, 1);
    expect(job1).toMatchObject({ jobId: buildId, fencingToken: 1 });
    expect((await sendEvent(f1, job1, { type: "accepted" })).status).toBe(200);

    const lost = await fire(buildId, "lease");
    expect(lost.build.machine).toMatchObject({ status: "retrying", attemptNo: 1 });
    expect(lost.timers.retry! - Date.now()).toBeGreaterThan(9_000);
    expect(lost.attempts[0]!.endedMs).not.toBeNull();

    const retried = await fire(buildId, "retry");
    expect(retried.build.machine).toMatchObject({ status: "running", attemptNo: 2 });
    const job2 = await nthJob(f2, 1);
    expect(job2.fencingToken).toBe(2);
    expect(job2.attemptId).not.toBe(job1.attemptId);
    const stale = await sendEvent(f1, job1, { type: "heartbeat" });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("stale_attempt");
    const forged = await sendEvent(f2, { ...job2, fencingToken: 1 }, { type: "heartbeat" });
    expect(forged.body.error.code).toBe("stale_attempt");
    await completeJob(f2, job2);
    expect((await buildSnapshot(buildStub(buildId)))!.build.machine.status).toBe("succeeded");
  });

  it("retries a refused dispatch with doubling backoff, then fails as infra after three attempts", async () => {
    const { fleets, buildId, t, imageId } = await started({ mode: "refuse" });
    const first = (await buildSnapshot(buildStub(buildId)))!;
    expect(first.build.machine).toMatchObject({ status: "retrying", attemptNo: 1 });
    const second = await fire(buildId, "retry");
    expect(second.build.machine).toMatchObject({ status: "retrying", attemptNo: 2 });
    expect(second.timers.retry! - Date.now()).toBeGreaterThan(19_000);
    const third = await fire(buildId, "retry");
    expect(third.build.machine).toMatchObject({ status: "failed", attemptNo: 3, failure: { reason: "infra" } });
    expect(third.build.machine.failure!.message).toMatch(/HTTP 503.*gave up after 3 attempts/);
    const sent = await dispatches(fleets[0]!, 3);
    expect(sent.map((d) => d.job.fencingToken)).toEqual([1, 2, 3]);
    const view = await apiJson("GET", `/v1/images/${imageId}`, { token: t.token });
    expect(view.body).toMatchObject({ status: "failed", failure: { reason: "infra" } });
  });

  it("never retries a build failure", async () => {
    const { fleets, buildId } = await started({ fleets: 2 });
    const job = await nthJob(fleets[0]!, 1);
    const r = await sendEvent(fleets[0]!, job, {
      type: "failed",
      reason: "build",
      message: "RUN exited 1",
      layerKey: job.layers[0]!.key,
      exitCode: 1,
      logTail: [],
    });
    expect(r.status).toBe(200);
    const s = await settle(buildId);
    expect(s.build.machine).toMatchObject({ status: "failed", attemptNo: 1, failure: { reason: "build" } });
    expect(s.timers.retry).toBeUndefined();
    expect(await dispatches(fleets[1]!, 0)).toHaveLength(0);
  });

  it("retries an infra failure the runner reports", async () => {
    const { fleets, buildId } = await started({ fleets: 2 });
    const job = await nthJob(fleets[0]!, 1);
    await sendEvent(fleets[0]!, job, {
      type: "failed",
      reason: "infra",
      message: "no space left",
      layerKey: null,
      exitCode: null,
      logTail: [],
    });
    expect((await fire(buildId, "retry")).build.machine).toMatchObject({ status: "running", attemptNo: 2 });
    expect(await dispatches(fleets[1]!, 1)).toHaveLength(1);
  });

  it("ends as timeout when the deadline passes without an outcome", async () => {
    const { buildId, fleets } = await started();
    await sendEvent(fleets[0]!, await nthJob(fleets[0]!, 1), { type: "started" });
    expect((await fire(buildId, "deadline")).build.machine).toMatchObject({ status: "timeout", failure: { reason: "timeout" } });
  });
});

describe("failure details", () => {
  // An infra failure on the first fleet that names a layer, with an exit code and a tail; then the retry on the second fleet.
  async function infraThenRetry() {
    const s = await started({ fleets: 2 });
    const job1 = await nthJob(s.fleets[0]!, 1);
    const pushFailed = {
      type: "failed",
      reason: "infra",
      message: "push failed",
      layerKey: job1.layers[1]!.key,
      exitCode: 125,
      logTail: ["pushing", "denied"],
    } as const;
    expect((await sendEvent(s.fleets[0]!, job1, pushFailed)).status).toBe(200);
    const retrying = (await buildSnapshot(buildStub(s.buildId)))!.build;
    expect(retrying).toMatchObject({
      machine: { status: "retrying" },
      failedLayer: job1.layers[1]!.key,
      failureExitCode: null,
      failureLogTail: ["pushing", "denied"],
    });
    const during = await apiJson("GET", `/v1/builds/${s.buildId}`, { token: s.t.token });
    expect(during.body).toMatchObject({
      status: "retrying",
      failure: { reason: "infra", exitCode: null, layerKey: job1.layers[1]!.key, logTail: ["pushing", "denied"] },
    });
    const retried = await fire(s.buildId, "retry");
    expect(retried.build).toMatchObject({
      machine: { status: "running", attemptNo: 2 },
      failedLayer: null,
      failureExitCode: null,
      failureLogTail: [],
    });
    return { ...s, job1, job2: await nthJob(s.fleets[1]!, 1) };
  }
  const failureOf = async (s: { t: { token: string }; buildId: string; imageId: string }) => ({
    build: (await apiJson("GET", `/v1/builds/${s.buildId}`, { token: s.t.token })).body.failure,
    image: (await apiJson("GET", `/v1/images/${s.imageId}`, { token: s.t.token })).body.failure,
  });

  it("keeps nothing of a retried infra failure once the retry succeeds", async () => {
    const s = await infraThenRetry();
    expect((await failureOf(s)).build).toBeNull();
    await completeJob(s.fleets[1]!, s.job2);
    const done = (await buildSnapshot(buildStub(s.buildId)))!.build;
    expect(done).toMatchObject({
      machine: { status: "succeeded", failure: null },
      failedLayer: null,
      failureExitCode: null,
      failureLogTail: [],
    });
    expect(await failureOf(s)).toEqual({ build: null, image: null });
  });

  it("shows only the final attempt's failure after a retry", async () => {
    const s = await infraThenRetry();
    // The infra failure named the second layer; this one names the first.
    const first = s.job2.layers[0]!;
    expect(
      (
        await sendEvent(s.fleets[1]!, s.job2, {
          type: "failed",
          reason: "build",
          message: "RUN exit 7 failed",
          layerKey: first.key,
          exitCode: 7,
          logTail: ["+ exit 7"],
        })
      ).status,
    ).toBe(200);
    const { build, image } = await failureOf(s);
    expect(build).toEqual({
      reason: "build",
      message: "RUN exit 7 failed (exit code 7)",
      exitCode: 7,
      layerKey: first.key,
      logTail: ["+ exit 7"],
    });
    expect(image).toMatchObject({ exitCode: 7, layerKey: first.key, layerIndex: first.index, logTail: ["+ exit 7"] });
  });

  it("does not lend an earlier attempt's details to a failure that reports none", async () => {
    const s = await infraThenRetry();
    expect(
      (
        await sendEvent(s.fleets[1]!, s.job2, {
          type: "failed",
          reason: "build",
          message: "killed",
          layerKey: null,
          exitCode: null,
          logTail: [],
        })
      ).status,
    ).toBe(200);
    const { build, image } = await failureOf(s);
    // The runner named no layer: the first one the build had not finished, not the layer the infra failure named.
    expect(build).toEqual({ reason: "build", message: "killed", exitCode: null, layerKey: s.job2.layers[0]!.key, logTail: [] });
    expect(image).toMatchObject({ exitCode: null, layerKey: s.job2.layers[0]!.key, logTail: [] });
  });

  it("forgets an infra failure's details when the build is cancelled between attempts", async () => {
    const { t, fleets, buildId } = await started({ fleets: 2 });
    const job = await nthJob(fleets[0]!, 1);
    await sendEvent(fleets[0]!, job, {
      type: "failed",
      reason: "infra",
      message: "no space left",
      layerKey: job.layers[0]!.key,
      exitCode: null,
      logTail: ["ENOSPC"],
    });
    expect((await apiJson("POST", `/v1/builds/${buildId}/cancel`, { token: t.token })).status).toBe(200);
    const done = await apiJson("GET", `/v1/builds/${buildId}`, { token: t.token });
    expect(done.body).toMatchObject({ status: "cancelled", failure: { reason: "cancelled", exitCode: null, layerKey: null, logTail: [] } });
  });
});

describe("cancel", () => {
  it("delivers a cancel in the next heartbeat response and ends cancelled when the runner confirms", async () => {
    const { t, fleets, buildId, imageId } = await started();
    const job = await nthJob(fleets[0]!, 1);
    expect((await sendEvent(fleets[0]!, job, { type: "heartbeat" })).body).toEqual({ ok: true, cancel: false });
    const asked = await apiJson("POST", `/v1/builds/${buildId}/cancel`, { token: t.token });
    expect(asked.status).toBe(202);
    expect(asked.body).toMatchObject({ status: "running", cancelRequested: true });
    expect((await sendEvent(fleets[0]!, job, { type: "heartbeat" })).body).toEqual({ ok: true, cancel: true });
    await sendEvent(fleets[0]!, job, {
      type: "failed",
      reason: "cancelled",
      message: "stopped",
      layerKey: null,
      exitCode: null,
      logTail: [],
    });
    const done = await apiJson("GET", `/v1/builds/${buildId}`, { token: t.token });
    expect(done.body.status).toBe("cancelled");
    expect((await apiJson("GET", `/v1/images/${imageId}`, { token: t.token })).body.status).toBe("cancelled");
    expect((await apiJson("POST", `/v1/builds/${buildId}/cancel`, { token: t.token })).status).toBe(200);
  });

  it("cancels a build no runner has at once", async () => {
    const t = await newTenant();
    const r = await submitImage(t.token, chain(1));
    const done = await apiJson("POST", `/v1/builds/${r.body.buildId}/cancel`, { token: t.token });
    expect(done.status).toBe(200);
    expect(done.body.status).toBe("cancelled");
  });
});

describe("fleet choice", () => {
  it("fails with a clear message when no fleet qualifies, and picks the fleet with the GPU", async () => {
    const t = await newTenant();
    const none = await submitImage(t.token, chain(1));
    expect((await settle(none.body.buildId)).build.machine.failure!.message).toMatch(/No runner fleet is registered/);
    const cpu = await newFleet(t.workspaceId);
    const gpu = await newFleet(t.workspaceId, { gpuTypes: ["T4"] });
    const r = await submitImage(t.token, [layer(["RUN nvidia-smi"], { gpu: { type: "T4", count: 1 } }, true)]);
    await settle(r.body.buildId);
    expect((await nthJob(gpu, 1)).layers[0]!.gpu).toEqual({ type: "T4", count: 1 });
    expect(await dispatches(cpu, 0)).toHaveLength(0);
  });
});

describe("persistence", () => {
  it("resumes from storage after eviction: timers, attempt and fencing survive", async () => {
    const { fleets, buildId } = await started();
    const job = await nthJob(fleets[0]!, 1);
    const stub = buildStub(buildId);
    const before = (await buildSnapshot(stub))!;
    await evictDurableObject(stub);
    const after = (await buildSnapshot(stub))!;
    expect(after.build).toEqual(before.build);
    expect(after.timers).toEqual(before.timers);
    // An attempt that was never dispatched answers like a bad signature: the route is no oracle (docs/security.md).
    expect((await sendEvent(fleets[0]!, { ...job, attemptId: "at-other" }, { type: "heartbeat" })).status).toBe(401);
    await completeJob(fleets[0]!, job);
    expect((await buildSnapshot(stub))!.build.machine.status).toBe("succeeded");
  });
});
