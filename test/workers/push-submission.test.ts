// Pushes to external registries (decision 0019) through the Worker: the submission's checks,
// the build of its own (a push-only job for a cached image), per-target results in the image
// view, isolation, and the rule that push logins go only to fleets trusted with secrets.
import type { Job } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import {
  apiJson,
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

const GOOD = "registry.example.com/team/app:v1";
const BAD = "other.example.com/app:v1";

describe("POST /v1/images with push", () => {
  it("refuses bad targets, labels without push and unknown login secrets", async () => {
    const t = await newTenant();
    for (const extra of [
      { push: [{ reference: "registry.example.com/Team/app:v1", secret: null }] },
      { push: [{ reference: "registry.example.com/app", secret: null }] },
      { labels: { a: "b" } },
      { push: [{ reference: GOOD, secret: null }], labels: { "bad key": "x" } },
    ]) {
      const r = await submitImage(t.token, chain(1), extra);
      expect(r.status, JSON.stringify(extra)).toBe(400);
    }
    const missing = await submitImage(t.token, chain(1), { push: [{ reference: GOOD, secret: "nope" }] });
    expect(missing.status).toBe(422);
    expect(missing.body.error.code).toBe("secret_not_found");
  });

  it("builds and pushes in one job; each target's result is shown on the image, to its workspace only", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId, { trustedWithSecrets: true });
    await apiJson("PUT", "/v1/secrets/reg", { token: t.token, json: { values: { REGISTRY_USERNAME: "u", REGISTRY_PASSWORD: "p4ss" } } });
    const push = [
      { reference: GOOD, secret: "reg" },
      { reference: BAD, secret: null },
    ];
    const r = await submitImage(t.token, chain(2), { push, labels: { team: "builds" }, revision: "abc123" });
    expect(r.status).toBe(202);
    await settle(r.body.buildId);
    const job = await nthJob(fleet, 1);
    expect(job.layers).toHaveLength(2);
    expect(job.push).toMatchObject({ source: null, targets: push, labels: { team: "builds" } });
    expect(job.push!.annotations).toMatchObject({ "org.opencontainers.image.revision": "abc123", "build.kiln.id": r.body.buildId });
    expect(job.secrets).toEqual({ reg: { REGISTRY_USERNAME: "u", REGISTRY_PASSWORD: "p4ss" } });
    const pending = await apiJson("GET", `/v1/images/${r.body.id}`, { token: t.token });
    expect(pending.body.pushes.map((p: { status: string }) => p.status)).toEqual(["pending", "pending"]);
    // A target the job was not given is refused.
    expect((await sendEvent(fleet, job, pushResult("elsewhere.example/x:v1", "succeeded"))).status).toBe(409);
    await completeJobWithPushes(fleet, job, [pushResult(GOOD, "succeeded"), pushResult(BAD, "failed")]);
    const view = await apiJson("GET", `/v1/images/${r.body.id}`, { token: t.token });
    expect(view.body.status).toBe("succeeded");
    expect(view.body.pushes).toEqual([
      { reference: GOOD, status: "succeeded", digest: DIGEST, message: null },
      { reference: BAD, status: "failed", digest: null, message: "UNAUTHORIZED: authentication required (HTTP 401)" },
    ]);
    const other = await newTenant();
    expect((await apiJson("GET", `/v1/images/${r.body.id}`, { token: other.token })).status).toBe(404);
  });

  it("sends a push-only job for a fully cached image; submissions without push still need no build", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const layers = chain(2);
    const first = await submitImage(t.token, layers);
    await settle(first.body.buildId);
    await completeJob(fleet, await nthJob(fleet, 1));
    const cached = await submitImage(t.token, layers);
    expect(cached.status).toBe(200);
    expect(cached.body.buildId).toBeNull();
    const pushed = await submitImage(t.token, layers, { push: [{ reference: GOOD, secret: null }] });
    expect(pushed.status).toBe(202);
    expect(pushed.body.status).not.toBe("succeeded");
    await settle(pushed.body.buildId);
    const job = await nthJob(fleet, 2);
    expect(job.layers).toEqual([]);
    const top = (await apiJson("GET", `/v1/images/${cached.body.id}`, { token: t.token })).body.layers.at(-1);
    expect(job.push!.source).toBe(top.reference);
    await completeJobWithPushes(fleet, job, [pushResult(GOOD, "succeeded")]);
    const view = await apiJson("GET", `/v1/images/${pushed.body.id}`, { token: t.token });
    expect(view.body.pushes).toEqual([{ reference: GOOD, status: "succeeded", digest: DIGEST, message: null }]);
  });

  it("does not take `succeeded` before every target was reported: the attempt is retried", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const r = await submitImage(t.token, chain(1), { push: [{ reference: GOOD, secret: null }] });
    await settle(r.body.buildId);
    const job = await nthJob(fleet, 1);
    await completeJob(fleet, job);
    const build = await apiJson("GET", `/v1/builds/${r.body.buildId}`, { token: t.token });
    expect(build.body.status).toBe("retrying");
  });

  it("refuses to send push logins to a fleet not trusted with secrets, and says so on the targets", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId);
    await apiJson("PUT", "/v1/secrets/reg", { token: t.token, json: { values: { REGISTRY_USERNAME: "u", REGISTRY_PASSWORD: "p" } } });
    const r = await submitImage(t.token, chain(1), { push: [{ reference: GOOD, secret: "reg" }] });
    await settle(r.body.buildId);
    const build = await apiJson("GET", `/v1/builds/${r.body.buildId}`, { token: t.token });
    expect(build.body.status).toBe("failed");
    expect(build.body.failure.message).toMatch(/trusted with secrets/);
    const view = await apiJson("GET", `/v1/images/${r.body.id}`, { token: t.token });
    expect(view.body.pushes[0]).toMatchObject({ status: "failed", message: expect.stringMatching(/not pushed/) });
  });
});

const DIGEST = `sha256:${"ab".repeat(32)}`;

function pushResult(reference: string, status: "succeeded" | "failed") {
  return status === "succeeded"
    ? { type: "push_result" as const, reference, status, digest: DIGEST, message: null }
    : { type: "push_result" as const, reference, status, digest: null, message: "UNAUTHORIZED: authentication required (HTTP 401)" };
}

// What a runner reports: accepted, started, each layer (its image in the registry), every push target, then `succeeded`.
async function completeJobWithPushes(fleet: TestFleet, job: Job, results: ReturnType<typeof pushResult>[]) {
  for (const e of [{ type: "accepted" }, { type: "started" }] as const) expect((await sendEvent(fleet, job, e)).status).toBe(200);
  for (const l of job.layers) {
    await registerLayerImage(job, l, digestFor(l.key));
    const event = { type: "layer_succeeded" as const, layerKey: l.key, digest: digestFor(l.key), sizeBytes: 1000, reference: l.target };
    expect((await sendEvent(fleet, job, event)).status).toBe(200);
  }
  for (const result of results) expect((await sendEvent(fleet, job, result)).status).toBe(200);
  expect((await sendEvent(fleet, job, { type: "succeeded" })).status).toBe(200);
  await settle(job.jobId);
}
