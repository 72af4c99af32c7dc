// GET /v1/builds/:id and POST /v1/builds/:id/cancel: the D1 view of a build, scopes and isolation;
// GET /v1/builds/:id?waitSeconds, the long-poll for the outcome.
import { describe, expect, it } from "vitest";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import { apiJson, buildStub, chain, completeJob, digestFor, dispatchedBuild, newTenant, sendEvent, submitImage } from "./helpers.ts";
import { buildSnapshot } from "./object-probes.ts";

describe("/v1/builds", () => {
  it("shows a build's status, attempts, fleet and the layers it produced", async () => {
    const { t, fleet, submitted: r, job } = await dispatchedBuild(2);
    const during = await apiJson("GET", `/v1/builds/${r.body.buildId}`, { token: t.token });
    expect(during.body).toMatchObject({
      id: r.body.buildId,
      status: "running",
      mode: "normal",
      attempts: 1,
      fleetId: fleet.id,
      cancelRequested: false,
      layers: [],
      finishedAt: null,
    });
    expect(during.body.layerKeys).toEqual(r.body.layers.map((l: { key: string }) => l.key));
    await completeJob(fleet, job);
    const after = await apiJson("GET", `/v1/builds/${r.body.buildId}`, { token: t.token });
    expect(after.body).toMatchObject({ status: "succeeded", failure: null, finishedAt: expect.any(String) });
    expect(after.body.layers.map((l: { key: string }) => l.key)).toEqual(during.body.layerKeys);
  });

  it("shows a failed step's exit code, layer and log tail", async () => {
    const { t, fleet, submitted: r, job } = await dispatchedBuild(2);
    const logTail = ["+ make", 'error: <missing> & "quoted"', "+ exit 7"];
    const failed = await sendEvent(fleet, job, {
      type: "failed",
      reason: "build",
      message: "RUN make failed",
      layerKey: job.layers[1]!.key,
      exitCode: 7,
      logTail,
    });
    expect(failed.status).toBe(200);
    const view = await apiJson("GET", `/v1/builds/${r.body.buildId}`, { token: t.token });
    expect(view.body).toMatchObject({ status: "failed", finishedAt: expect.any(String) });
    expect(view.body.failure).toEqual({
      reason: "build",
      message: "RUN make failed (exit code 7)",
      exitCode: 7,
      layerKey: job.layers[1]!.key,
      logTail,
    });
  });

  it("answers 404 for unknown builds and other workspaces', 403 without the scope", async () => {
    const t = await newTenant();
    const r = await submitImage(t.token, chain(1));
    const other = await newTenant();
    expect((await apiJson("GET", "/v1/builds/bd-nope", { token: t.token })).status).toBe(404);
    expect((await apiJson("POST", `/v1/builds/${r.body.buildId}/cancel`, { token: other.token })).status).toBe(404);
    expect((await apiJson("GET", `/v1/builds/${r.body.buildId}/logs`, { token: other.token })).status).toBe(404);
    const reader = await newTenant(["images:read"]);
    expect((await apiJson("POST", `/v1/builds/${r.body.buildId}/cancel`, { token: reader.token })).status).toBe(403);
    expect((await apiJson("GET", `/v1/builds/${r.body.buildId}/logs?cursor=-1`, { token: t.token })).status).toBe(400);
    expect((await apiJson("GET", `/v1/builds/${r.body.buildId}`)).status).toBe(401);
  });
});

describe("GET /v1/builds/:id?waitSeconds", () => {
  /** Starts a long-poll, remembering when (and whether) it was answered. */
  function longPoll(token: string, buildId: string, waitSeconds: number) {
    const startedAtMs = Date.now();
    const state = { answered: false, elapsedMs: -1 };
    const answer = apiJson("GET", `/v1/builds/${buildId}?waitSeconds=${waitSeconds}`, { token }).then((r) => {
      state.answered = true;
      state.elapsedMs = Date.now() - startedAtMs;
      return r;
    });
    return { answer, state };
  }

  it("answers a waiting reader with `succeeded` once the runner's final event arrives", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(2);
    const poll = longPoll(t.token, buildId, 20);
    // Every event below is committed and its outbox delivered, which wakes the waiter; none ends the build.
    for (const e of [{ type: "accepted" }, { type: "started" }] as const) expect((await sendEvent(fleet, job, e)).status).toBe(200);
    for (const l of job.layers) {
      await registerLayerImage(job, l, digestFor(l.key));
      const built = await sendEvent(fleet, job, {
        type: "layer_succeeded",
        layerKey: l.key,
        digest: digestFor(l.key),
        sizeBytes: 1000 + l.index,
        reference: l.target,
      });
      expect(built.status).toBe(200);
    }
    expect(poll.state.answered).toBe(false);
    expect((await sendEvent(fleet, job, { type: "succeeded" })).status).toBe(200);
    const { status, body } = await poll.answer;
    expect(status).toBe(200);
    // The final status and everything the outbox wrote with it: the answer waited for D1.
    expect(body).toMatchObject({ id: buildId, status: "succeeded", failure: null, finishedAt: expect.any(String) });
    expect(body.layers.map((l: { key: string }) => l.key)).toEqual(job.layers.map((l) => l.key));
  });

  it("answers a waiting reader with `failed` and the failure once the runner reports it", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(1);
    const poll = longPoll(t.token, buildId, 20);
    for (const e of [{ type: "accepted" }, { type: "started" }] as const) expect((await sendEvent(fleet, job, e)).status).toBe(200);
    expect(poll.state.answered).toBe(false);
    const failed = await sendEvent(fleet, job, {
      type: "failed",
      reason: "build",
      message: "RUN make failed",
      layerKey: job.layers[0]!.key,
      exitCode: 2,
      logTail: ["boom"],
    });
    expect(failed.status).toBe(200);
    const { status, body } = await poll.answer;
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: "failed", finishedAt: expect.any(String) });
    expect(body.failure).toMatchObject({ reason: "build", exitCode: 2, layerKey: job.layers[0]!.key, logTail: ["boom"] });
  });

  it("answers after waitSeconds with the current status when the build does not end", async () => {
    const { t, buildId } = await dispatchedBuild(1);
    const poll = longPoll(t.token, buildId, 1);
    const { status, body } = await poll.answer;
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: buildId, status: "running", finishedAt: null });
    expect(poll.state.elapsedMs).toBeGreaterThanOrEqual(900);
    expect(poll.state.elapsedMs).toBeLessThan(10_000);
  });

  it("refuses waitSeconds above 25, negative or not an integer with a 400, changing nothing", async () => {
    const { t, buildId } = await dispatchedBuild(1);
    const before = await apiJson("GET", `/v1/builds/${buildId}`, { token: t.token });
    const objectBefore = await buildSnapshot(buildStub(buildId));
    for (const wait of ["26", "-1", "1.5", "soon"]) {
      const refused = await apiJson("GET", `/v1/builds/${buildId}?waitSeconds=${wait}`, { token: t.token });
      expect(refused.status, `waitSeconds=${wait}`).toBe(400);
      expect(refused.body.error).toMatchObject({ code: "invalid_request" });
    }
    const after = await apiJson("GET", `/v1/builds/${buildId}`, { token: t.token });
    expect(after.body).toEqual(before.body);
    expect(await buildSnapshot(buildStub(buildId))).toEqual(objectBefore);
    expect(after.body.status).toBe("running");
  });

  it("answers an ended build at once", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(1);
    await completeJob(fleet, job);
    const poll = longPoll(t.token, buildId, 25);
    const { status, body } = await poll.answer;
    expect(status).toBe(200);
    expect(body.status).toBe("succeeded");
    expect(poll.state.elapsedMs).toBeLessThan(2000);
  });
});
