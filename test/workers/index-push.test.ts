// External pushes of multi-platform images (decision 0023, "Tags and pushes"): the targets are
// recorded pending with the index; once assembled (when its last platform's build ends, or at the
// first read after), one push build is created whose
// push-only job copies the index (pinned by digest) with the labels and annotations; the
// runner's per-target results show on the index; logins go only to fleets trusted with secrets;
// a platform that fails leaves the targets failed, never pending.
import type { Job } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { apiJson, newTenant, nthJob, sendEvent, settle } from "./helpers.ts";
import { buildPlatforms, completeIndex, nextJob, type PlatformTenant, platformTenant, submitIndex } from "./index-support.ts";

const GOOD = "registry.example.com/team/app:v1";
const BAD = "other.example.com/app:v1";
const DIGEST = `sha256:${"cd".repeat(32)}`;

async function withSecret(t: PlatformTenant): Promise<void> {
  const values = { REGISTRY_USERNAME: "u", REGISTRY_PASSWORD: "p4ss" };
  expect((await apiJson("PUT", "/v1/secrets/reg", { token: t.token, json: { values } })).status).toBe(200);
}

// A runner's push-only job: accepted, started, one result per target, succeeded.
async function completePushJob(t: PlatformTenant, job: Job, results: Record<string, unknown>[]): Promise<void> {
  for (const e of [{ type: "accepted" }, { type: "started" }] as const) expect((await sendEvent(t.fleet, job, e)).status).toBe(200);
  for (const r of results) expect((await sendEvent(t.fleet, job, { type: "push_result", ...r })).status).toBe(200);
  expect((await sendEvent(t.fleet, job, { type: "succeeded" })).status).toBe(200);
  await settle(job.jobId);
}

describe("POST /v1/image-indexes with push", () => {
  it("refuses labels without push and unknown login secrets", async () => {
    const t = await newTenant();
    const images = [{ platform: "linux/amd64", imageId: "im-x" }];
    expect((await apiJson("POST", "/v1/image-indexes", { token: t.token, json: { images, labels: { a: "b" } } })).status).toBe(400);
    const missing = await apiJson("POST", "/v1/image-indexes", {
      token: (await platformTenant()).token,
      json: { images, push: [{ reference: GOOD, secret: "nope" }] },
    });
    expect(missing.status).toBe(404); // the image is not the workspace's: checked first
    const t2 = await platformTenant();
    const index = await submitIndex(t2, { push: [{ reference: GOOD, secret: "nope" }] });
    expect(index.created.status).toBe(422);
    expect(index.created.body.error.code).toBe("secret_not_found");
  });

  it("pushes the assembled index in one push-only job and shows each target's result", async () => {
    const t = await platformTenant({ trustedWithSecrets: true });
    await withSecret(t);
    const push = [
      { reference: GOOD, secret: "reg" },
      { reference: BAD, secret: null },
    ];
    const index = await submitIndex(t, { push, labels: { team: "builds" }, revision: "abc123" });
    expect(index.created.status).toBe(201);
    expect(index.created.body.pushes.map((p: { status: string }) => p.status)).toEqual(["pending", "pending"]);
    const pushBuildId = index.created.body.pushBuildId as string;
    expect(pushBuildId).toMatch(/^bd-/);
    // Each platform's own submission pushes nowhere.
    for (const s of index.submitted) expect(s.body.pushes).toBeUndefined();
    const view = await completeIndex(t, index);
    expect(view.body.status).toBe("succeeded");
    await settle(pushBuildId);
    const job = await nextJob(t);
    expect(job.jobId).toBe(pushBuildId);
    expect(job.layers).toEqual([]);
    expect(job.push).toMatchObject({ source: view.body.reference, targets: push, labels: { team: "builds" } });
    expect(job.push!.annotations).toMatchObject({ "org.opencontainers.image.revision": "abc123", "build.kiln.id": pushBuildId });
    expect(job.secrets).toEqual({ reg: { REGISTRY_USERNAME: "u", REGISTRY_PASSWORD: "p4ss" } });
    // Reading again does not start a second push; deleting waits for the push to end.
    await apiJson("GET", `/v1/image-indexes/${view.body.id}`, { token: t.token });
    const refused = await apiJson("DELETE", `/v1/images/${view.body.id}`, { token: t.token });
    expect(refused.status).toBe(409);
    expect(refused.body.error.details).toEqual({ buildId: pushBuildId });
    await completePushJob(t, job, [
      { reference: GOOD, status: "succeeded", digest: DIGEST, message: null },
      { reference: BAD, status: "failed", digest: null, message: "UNAUTHORIZED: authentication required (HTTP 401)" },
    ]);
    const done = await apiJson("GET", `/v1/image-indexes/${view.body.id}`, { token: t.token });
    expect(done.body.pushes).toEqual([
      { reference: GOOD, status: "succeeded", digest: DIGEST, message: null },
      { reference: BAD, status: "failed", digest: null, message: "UNAUTHORIZED: authentication required (HTTP 401)" },
    ]);
    expect(await nthJob(t.fleet, t.jobs).then((j) => j.jobId)).toBe(pushBuildId);
    expect((await apiJson("DELETE", `/v1/images/${view.body.id}`, { token: t.token })).status).toBe(200);
    // Another workspace sees nothing of it.
    expect((await apiJson("GET", `/v1/image-indexes/${view.body.id}`, { token: (await newTenant()).token })).status).toBe(404);
  });

  it("starts the push when the last platform's build ends, without anybody reading the index", async () => {
    const t = await platformTenant();
    const index = await submitIndex(t, { push: [{ reference: BAD, secret: null }] });
    const pushBuildId = index.created.body.pushBuildId as string;
    await buildPlatforms(t, index);
    await settle(pushBuildId);
    const job = await nextJob(t);
    expect(job.jobId).toBe(pushBuildId);
    expect(job.push?.targets).toEqual([{ reference: BAD, secret: null }]);
  });

  it("sends push logins only to fleets trusted with secrets", async () => {
    const t = await platformTenant();
    await withSecret(t);
    const index = await submitIndex(t, { push: [{ reference: GOOD, secret: "reg" }] });
    const view = await completeIndex(t, index);
    const pushBuildId = view.body.pushBuildId as string;
    await settle(pushBuildId);
    const build = await apiJson("GET", `/v1/builds/${pushBuildId}`, { token: t.token });
    expect(build.body.status).toBe("failed");
    expect(build.body.failure.message).toMatch(/trusted with secrets/);
    const after = await apiJson("GET", `/v1/image-indexes/${view.body.id}`, { token: t.token });
    expect(after.body.pushes[0]).toMatchObject({ status: "failed", message: expect.stringMatching(/not pushed/) });
  });

  it("marks the targets failed when a platform fails, and starts no push", async () => {
    const t = await platformTenant();
    const index = await submitIndex(t, { push: [{ reference: GOOD, secret: null }] });
    const [amd] = index.submitted;
    await settle(amd!.body.buildId);
    const job = await nextJob(t);
    for (const e of [{ type: "accepted" }, { type: "started" }] as const) await sendEvent(t.fleet, job, e);
    const failed = {
      type: "failed" as const,
      reason: "build",
      message: "RUN exited 1",
      layerKey: job.layers[0]!.key,
      exitCode: 1,
      logTail: [],
    };
    expect((await sendEvent(t.fleet, job, failed)).status).toBe(200);
    await settle(amd!.body.buildId);
    const view = await apiJson("GET", `/v1/image-indexes/${index.created.body.id}`, { token: t.token });
    expect(view.body.status).toBe("failed");
    expect(view.body.pushes).toEqual([
      { reference: GOOD, status: "failed", digest: null, message: "not pushed: the multi-platform image failed" },
    ]);
    expect((await apiJson("GET", `/v1/builds/${view.body.pushBuildId}`, { token: t.token })).status).toBe(404);
  });
});
