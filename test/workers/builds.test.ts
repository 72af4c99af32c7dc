// GET /v1/builds/:id and POST /v1/builds/:id/cancel: the D1 view of a build, scopes and isolation.
import { describe, expect, it } from "vitest";
import { apiJson, chain, completeJob, dispatchedBuild, newTenant, sendEvent, submitImage } from "./helpers.ts";

describe("/v1/builds", () => {
  it("shows a build's status, attempts, fleet and the layers it produced", async () => {
    const { t, fleet, submitted: r, job } = await dispatchedBuild(2);
    const during = await apiJson("GET", `/v1/builds/${r.body.buildId}`, { token: t.token });
    expect(during.body).toMatchObject({ id: r.body.buildId, status: "running", mode: "normal", attempts: 1, fleetId: fleet.id, cancelRequested: false, layers: [], finishedAt: null });
    expect(during.body.layerKeys).toEqual(r.body.layers.map((l: { key: string }) => l.key));
    await completeJob(fleet, job);
    const after = await apiJson("GET", `/v1/builds/${r.body.buildId}`, { token: t.token });
    expect(after.body).toMatchObject({ status: "succeeded", failure: null, finishedAt: expect.any(String) });
    expect(after.body.layers.map((l: { key: string }) => l.key)).toEqual(during.body.layerKeys);
  });

  it("shows a failed step's exit code, layer and log tail", async () => {
    const { t, fleet, submitted: r, job } = await dispatchedBuild(2);
    const logTail = ["+ make", "error: <missing> & \"quoted\"", "+ exit 7"];
    const failed = await sendEvent(fleet, job, { type: "failed", reason: "build", message: "RUN make failed", layerKey: job.layers[1]!.key, exitCode: 7, logTail });
    expect(failed.status).toBe(200);
    const view = await apiJson("GET", `/v1/builds/${r.body.buildId}`, { token: t.token });
    expect(view.body).toMatchObject({ status: "failed", finishedAt: expect.any(String) });
    expect(view.body.failure).toEqual({ reason: "build", message: "RUN make failed (exit code 7)", exitCode: 7, layerKey: job.layers[1]!.key, logTail });
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
