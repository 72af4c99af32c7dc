// POST /v1/runner/events: per-fleet signatures with ±5 min tolerance, replays, unknown attempts,
// stale attempts and malformed bodies all answered 4xx, and none of them changes the build.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { newWebhookSecret, signWebhook } from "../../workers/protocol/webhooks.ts";
import { buildStub, chain, newFleet, newTenant, nthJob, ORIGIN, sendEvent, settle, submitImage } from "./helpers.ts";

async function running() {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  const r = await submitImage(t.token, chain(1));
  await settle(r.body.buildId);
  const job = await nthJob(fleet, 1);
  return { t, fleet, job, buildId: r.body.buildId as string };
}

const statusOf = async (buildId: string) => (await buildStub(buildId).snapshot())!.build.machine.status;

describe("POST /v1/runner/events", () => {
  it("accepts a signed event for the current attempt and answers { ok, cancel }", async () => {
    const { fleet, job, buildId } = await running();
    expect(await sendEvent(fleet, job, { type: "started" })).toMatchObject({ status: 200, body: { ok: true, cancel: false } });
    expect(await statusOf(buildId)).toBe("running");
  });

  it("refuses bad signatures, another fleet's secret, missing headers and timestamps outside ±5 minutes with 401", async () => {
    const { fleet, job, buildId } = await running();
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

  it("refuses malformed bodies with 400 and unknown jobs or attempts with 404", async () => {
    const { fleet, job } = await running();
    const raw = async (body: string) => {
      const response = await SELF.fetch(`${ORIGIN}/v1/runner/events`, { method: "POST", headers: { "content-type": "application/json", ...signWebhook(fleet.secret, "msg_x", body) }, body });
      return { status: response.status, body: (await response.json()) as any };
    };
    expect((await raw("{not json")).status).toBe(400);
    expect((await raw(JSON.stringify({ type: "heartbeat", jobId: job.jobId }))).body.error.code).toBe("invalid_request");
    expect((await raw(JSON.stringify({ type: "explode", jobId: job.jobId, attemptId: job.attemptId, fencingToken: 1 }))).status).toBe(400);
    expect((await raw(JSON.stringify({ type: "heartbeat", jobId: job.jobId, attemptId: job.attemptId, fencingToken: 1, extra: 1 }))).status).toBe(400);
    const unknownJob = await sendEvent(fleet, { ...job, jobId: "bd-unknown" }, { type: "heartbeat" });
    expect(unknownJob).toMatchObject({ status: 404, body: { error: { code: "unknown_attempt" } } });
  });

  it("refuses a replay and a stale fencing token with 409, changing nothing", async () => {
    const { fleet, job, buildId } = await running();
    const first = await sendEvent(fleet, job, { type: "accepted" }, { webhookId: "msg_once" });
    expect(first.status).toBe(200);
    const replay = await sendEvent(fleet, job, { type: "succeeded" }, { webhookId: "msg_once" });
    expect(replay).toMatchObject({ status: 409, body: { error: { code: "duplicate_event" } } });
    const stale = await sendEvent(fleet, { ...job, fencingToken: 7 }, { type: "succeeded" });
    expect(stale).toMatchObject({ status: 409, body: { error: { code: "stale_attempt" } } });
    expect(await statusOf(buildId)).toBe("running");
  });

  it("answers a replayed final event as a duplicate (delivered), not as stale", async () => {
    const { fleet, job, buildId } = await running();
    await sendEvent(fleet, job, { type: "layer_succeeded", layerKey: job.layers[0]!.key, digest: `sha256:${"2".repeat(64)}`, sizeBytes: 1, reference: job.layers[0]!.target });
    expect((await sendEvent(fleet, job, { type: "succeeded" }, { webhookId: "msg_final" })).status).toBe(200);
    expect(await statusOf(buildId)).toBe("succeeded");
    expect(await sendEvent(fleet, job, { type: "succeeded" }, { webhookId: "msg_final" })).toMatchObject({ status: 409, body: { error: { code: "duplicate_event" } } });
  });

  it("refuses a layer the job does not build, and events after the build ended", async () => {
    const { fleet, job, buildId } = await running();
    const wrong = await sendEvent(fleet, job, { type: "layer_succeeded", layerKey: "f".repeat(64), digest: `sha256:${"1".repeat(64)}`, sizeBytes: 1, reference: "x" });
    expect(wrong).toMatchObject({ status: 409, body: { error: { code: "unknown_layer" } } });
    await sendEvent(fleet, job, { type: "failed", reason: "build", message: "no", layerKey: null, exitCode: 1, logTail: [] });
    expect(await statusOf(buildId)).toBe("failed");
    expect((await sendEvent(fleet, job, { type: "heartbeat" })).body.error.code).toBe("stale_attempt");
  });
});
