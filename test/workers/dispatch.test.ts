// Signed dispatch against a real HTTP endpoint (test/node/fleet-recorder.ts) that records what
// it receives: the signature verifies over the exact bytes, 2xx is acceptance, anything else
// (a redirect included, never followed) is a refusal, and an unreachable or silent fleet fails cleanly.

import { JobSchema, newWebhookSecret, verifyWebhook } from "@kiln-build/protocol";
import { describe, expect, inject, it } from "vitest";
import { composeJob } from "../../durable-objects/job.ts";
import { dispatchJob } from "../../workers/dispatch.ts";
import { dispatches, layer, newFleet, newTenant } from "./helpers.ts";

function job(attemptId: string) {
  return composeJob({
    buildId: "bd-dispatch",
    workspaceId: "ws",
    workspaceName: "acme",
    origin: "http://127.0.0.1:8787",
    mode: "normal",
    builderVersion: "2025.06",
    attemptId,
    fencingToken: 1,
    parentReference: null,
    layers: [{ index: 0, key: "a".repeat(64), spec: layer(["RUN true"], {}, true) }],
    secrets: {},
    token: "kjt_x",
    deadlineMs: Date.now() + 3_600_000,
  });
}

async function fleetUrl(mode: string) {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId, { mode: mode as "accept" });
  return { fleet, url: `${inject("fleetRecorderUrl")}/fleet/${fleet.recorderKey}/${mode}` };
}

describe("dispatchJob", () => {
  it("POSTs the job signed per Standard Webhooks with a fresh webhook-id per delivery; 202 is acceptance", async () => {
    const { fleet, url } = await fleetUrl("accept");
    const secret = newWebhookSecret();
    expect(await dispatchJob(url, secret, job("at-accept"))).toEqual({ ok: true, status: 202 });
    const [received] = await dispatches(fleet, 1);
    const id = received!.headers["webhook-id"]!;
    expect(id).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(received!.headers["content-type"]).toBe("application/json");
    expect(verifyWebhook(secret, received!.headers, received!.body)).toEqual({ ok: true, id });
    expect(JSON.parse(received!.body).attemptId).toBe("at-accept");
    expect(verifyWebhook(newWebhookSecret(), received!.headers, received!.body).ok).toBe(false);
    expect(JobSchema.safeParse(JSON.parse(received!.body)).success).toBe(true);
  });

  it("reports 5xx and 4xx answers as refusals", async () => {
    for (const [mode, status] of [
      ["refuse", 503],
      ["reject", 400],
    ] as const) {
      const { url } = await fleetUrl(mode);
      expect(await dispatchJob(url, newWebhookSecret(), job(`at-${mode}`))).toEqual({
        ok: false,
        error: { code: "refused", status, message: `The fleet refused the job with HTTP ${status}.` },
      });
    }
  });

  it("does not follow redirects", async () => {
    const { fleet, url } = await fleetUrl("redirect");
    const result = await dispatchJob(url, newWebhookSecret(), job("at-redirect"));
    expect(result).toMatchObject({ ok: false, error: { code: "refused", status: 307 } });
    expect(await dispatches(fleet, 1)).toHaveLength(1);
  });

  it("fails cleanly when the fleet is unreachable or does not answer in time", async () => {
    expect(await dispatchJob("http://127.0.0.1:1/jobs", newWebhookSecret(), job("at-down"))).toMatchObject({
      ok: false,
      error: { code: "unreachable" },
    });
    const { url } = await fleetUrl("hang");
    expect(await dispatchJob(url, newWebhookSecret(), job("at-hang"), { timeoutMs: 200 })).toMatchObject({
      ok: false,
      error: { code: "timeout" },
    });
  });
});
