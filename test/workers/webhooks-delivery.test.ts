// Completion notifications end to end inside workerd: a finished build (succeeded, failed,
// joined, answered from the cache) enqueues one signed `build.*` delivery per subscription that
// asked; receivers verify them with the standardwebhooks library and the secret from
// POST /v1/webhooks; failed attempts are retried on the schedule (timers made due, the alarm
// run, never a sleep) and the delivery log shows every attempt. Receivers are played by
// intercepting the object's fetch to https://hooks.kiln.test (an edge Kiln does not own).
import { env, runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WebhookDelivery } from "../../durable-objects/webhook-delivery.ts";
import { notifyBuildEnded } from "../../workers/webhooks/notify.ts";
import { DEFAULT_RETRY_SCHEDULE_MS } from "../../workers/webhooks/schedule.ts";
import { apiJson, chain, completeJob, newFleet, newTenant, nthJob, sendEvent, settle, submitImage } from "./helpers.ts";

const HOOKS = "https://hooks.kiln.test/";
type Received = { path: string; headers: Record<string, string>; body: string };
let received: Received[];
// Status codes each path answers in turn (the last one repeats); 200 when unscripted.
let script: Record<string, number[]>;

beforeEach(() => {
  received = [];
  script = {};
  const realFetch = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (!request.url.startsWith(HOOKS)) return realFetch(input, init);
    const path = new URL(request.url).pathname;
    received.push({ path, headers: Object.fromEntries(request.headers), body: await request.text() });
    const statuses = script[path] ?? [200];
    const status = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
    const headers = status >= 300 && status < 400 ? { location: "https://10.0.0.1/" } : undefined;
    return new Response(status === 204 ? null : status === 200 ? "ok" : `receiver says ${status}`, { status, headers });
  });
});
afterEach(() => vi.restoreAllMocks());

async function subscribe(token: string, path: string, events = ["build.succeeded", "build.failed", "build.cancelled"]) {
  const r = await apiJson("POST", "/v1/webhooks", { token, json: { url: `${HOOKS.slice(0, -1)}${path}`, events } });
  expect(r.status).toBe(201);
  return r.body as { id: string; secret: string };
}

const stub = (id: string) => env.WEBHOOK_DELIVERY.getByName(id) as DurableObjectStub<WebhookDelivery>;

/** Runs the subscription's due attempts, as its alarm does; with `retries`, makes every pending retry due first. */
async function deliver(id: string, retries = false): Promise<void> {
  await runInDurableObject(stub(id), async (instance: WebhookDelivery, state) => {
    if (retries) state.storage.sql.exec("UPDATE timers SET due_ms = 0 WHERE name LIKE 'd:%'");
    await instance.alarm();
  });
}

async function deliveries(token: string, id: string) {
  const r = await apiJson("GET", `/v1/webhooks/${id}/deliveries`, { token });
  expect(r.status).toBe(200);
  return r.body.deliveries as any[];
}

function verified(secret: string, r: Received): any {
  return new Webhook(secret).verify(r.body, r.headers);
}

// A tenant with a fleet, a subscription, and a build of `layers` dispatched to the fleet.
async function buildWithHooks(path: string, events?: string[], extra: Record<string, unknown> = {}) {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  const sub = await subscribe(t.token, path, events);
  const layers = chain(2);
  const submitted = await submitImage(t.token, layers, extra);
  await settle(submitted.body.buildId);
  return { t, fleet, sub, submitted, layers, job: await nthJob(fleet, 1) };
}

describe("webhook deliveries", () => {
  it("delivers a signed build.succeeded for a finished build, once, to the subscriptions that asked", async () => {
    const { t, fleet, sub, submitted, layers, job } = await buildWithHooks("/ok", ["build.succeeded"], { tag: "app:v1" });
    const failedOnly = await subscribe(t.token, "/failed-only", ["build.failed"]);
    const joined = await submitImage(t.token, layers);
    expect(joined.body.buildId).toBe(submitted.body.buildId);
    await completeJob(fleet, job);
    await deliver(sub.id);
    await deliver(failedOnly.id);
    const got = received.filter((r) => r.path === "/ok");
    expect(got).toHaveLength(2);
    const events = got.map((r) => verified(sub.secret, r));
    const mine = events.find((e) => e.data.imageId === submitted.body.id);
    expect(mine).toEqual({
      type: "build.succeeded",
      timestamp: expect.any(String),
      data: {
        imageId: submitted.body.id,
        buildId: submitted.body.buildId,
        workspace: t.workspaceName,
        status: "succeeded",
        tags: [{ name: "app:v1", reference: `kiln.test/${t.workspaceName}/app:v1` }],
        references: [
          expect.stringMatching(new RegExp(`^kiln\\.test/${t.workspaceName}/layers@sha256:`)),
          `kiln.test/${t.workspaceName}/app:v1`,
        ],
        failure: null,
        url: `https://kiln.test/images/${submitted.body.id}`,
      },
    });
    // The joined submission is its own image with its own event.
    expect(events.map((e) => e.data.imageId).sort()).toEqual([submitted.body.id, joined.body.id].sort());
    expect(got[0]!.headers["webhook-id"]).toMatch(/^msg_/);
    expect(got[0]!.headers["user-agent"]).toMatch(/^kiln-webhooks\//);
    expect(received.filter((r) => r.path === "/failed-only")).toEqual([]);
    // The outbox may deliver its item twice: the same events are not enqueued again.
    await notifyBuildEnded(env, submitted.body.buildId, {
      workspaceId: t.workspaceId,
      workspaceName: t.workspaceName,
      origin: "https://kiln.test",
    });
    await deliver(sub.id);
    expect(received.filter((r) => r.path === "/ok")).toHaveLength(2);
    const log = await deliveries(t.token, sub.id);
    expect(log).toHaveLength(2);
    for (const d of log) {
      expect(d).toMatchObject({ type: "build.succeeded", state: "delivered", attemptCount: 1, nextAttemptAt: null });
      expect(d.attempts[0]).toMatchObject({ statusCode: 200, error: null });
    }
  });

  it("delivers build.failed with the failure's reason, message and exit code", async () => {
    const { t, fleet, sub, submitted, job } = await buildWithHooks("/fail");
    await sendEvent(fleet, job, { type: "accepted" });
    const failed = {
      type: "failed",
      reason: "build",
      message: "RUN make failed",
      layerKey: job.layers[1]!.key,
      exitCode: 7,
      logTail: ["+ make"],
    } as const;
    expect((await sendEvent(fleet, job, failed)).status).toBe(200);
    await deliver(sub.id);
    const [r] = received;
    expect(verified(sub.secret, r!)).toMatchObject({
      type: "build.failed",
      data: {
        imageId: submitted.body.id,
        status: "failed",
        references: [],
        failure: { reason: "build", message: "RUN make failed (exit code 7)", exitCode: 7 },
      },
    });
    expect((await deliveries(t.token, sub.id))[0]).toMatchObject({ type: "build.failed", state: "delivered" });
  });

  it("retries a receiver that answers 500 twice and delivers the third attempt, logging every attempt", async () => {
    const { t, fleet, sub, job } = await buildWithHooks("/flaky");
    script["/flaky"] = [500, 500, 204];
    await completeJob(fleet, job);
    await deliver(sub.id);
    let [d] = await deliveries(t.token, sub.id);
    expect(d).toMatchObject({ state: "pending", attemptCount: 1, nextAttemptAt: expect.any(String) });
    // The second attempt is due DEFAULT_RETRY_SCHEDULE_MS[1] after the first failure.
    const gap = Date.parse(d.nextAttemptAt) - Date.parse(d.attempts[0].at);
    expect(gap).toBeGreaterThanOrEqual(DEFAULT_RETRY_SCHEDULE_MS[1]!);
    expect(gap).toBeLessThan(DEFAULT_RETRY_SCHEDULE_MS[1]! + 5_000);
    await deliver(sub.id);
    expect(received).toHaveLength(1);
    await deliver(sub.id, true);
    await deliver(sub.id, true);
    [d] = await deliveries(t.token, sub.id);
    expect(d).toMatchObject({ state: "delivered", attemptCount: 3, nextAttemptAt: null });
    expect(d.attempts.map((a: any) => [a.statusCode, a.error])).toEqual([
      [500, "The receiver answered 500: receiver says 500"],
      [500, "The receiver answered 500: receiver says 500"],
      [204, null],
    ]);
    // Every attempt is the same message (one webhook-id), each signed afresh and verifiable.
    expect(new Set(received.map((r) => r.headers["webhook-id"])).size).toBe(1);
    for (const r of received) expect(verified(sub.secret, r).type).toBe("build.succeeded");
  });

  it("gives up after the last attempt of the schedule and marks the delivery failed", async () => {
    const { t, fleet, sub, job } = await buildWithHooks("/down");
    script["/down"] = [503];
    await completeJob(fleet, job);
    await deliver(sub.id);
    for (let i = 1; i < DEFAULT_RETRY_SCHEDULE_MS.length + 2; i++) await deliver(sub.id, true);
    expect(received).toHaveLength(DEFAULT_RETRY_SCHEDULE_MS.length);
    const [d] = await deliveries(t.token, sub.id);
    expect(d).toMatchObject({ state: "failed", attemptCount: DEFAULT_RETRY_SCHEDULE_MS.length, nextAttemptAt: null });
    expect(d.attempts.every((a: any) => a.statusCode === 503)).toBe(true);
    // Redelivery starts the schedule afresh with the same event.
    script["/down"] = [200];
    expect((await apiJson("POST", `/v1/webhooks/${sub.id}/deliveries/${d.id}/redeliver`, { token: t.token })).status).toBe(202);
    await deliver(sub.id);
    const [again] = await deliveries(t.token, sub.id);
    expect(again).toMatchObject({ id: d.id, state: "delivered", attemptCount: DEFAULT_RETRY_SCHEDULE_MS.length + 1 });
  });

  it("counts a redirect as a failed attempt and does not follow it", async () => {
    const { t, fleet, sub, job } = await buildWithHooks("/moved");
    script["/moved"] = [302, 200];
    await completeJob(fleet, job);
    await deliver(sub.id);
    expect(received).toHaveLength(1);
    const [d] = await deliveries(t.token, sub.id);
    expect(d.attempts[0]).toMatchObject({ statusCode: 302, error: "Redirects are not followed (to https://10.0.0.1/)." });
    expect(d.state).toBe("pending");
  });

  it("notifies build.succeeded for an image answered fully from the cache, once", async () => {
    const { t, fleet, job, layers } = await buildWithHooks("/first", ["build.failed"]);
    await completeJob(fleet, job);
    const sub = await subscribe(t.token, "/cached", ["build.succeeded"]);
    const cached = await submitImage(t.token, layers);
    expect(cached.body).toMatchObject({ status: "succeeded", buildId: null });
    await submitImage(t.token, layers);
    await deliver(sub.id);
    expect(received).toHaveLength(1);
    expect(verified(sub.secret, received[0]!)).toMatchObject({
      type: "build.succeeded",
      data: { imageId: cached.body.id, buildId: null, status: "succeeded", references: [expect.stringContaining("/layers@sha256:")] },
    });
  });

  it("sends a ping on request, and another workspace's builds never reach a subscription", async () => {
    const a = await newTenant();
    const sub = await subscribe(a.token, "/ping");
    const ping = await apiJson("POST", `/v1/webhooks/${sub.id}/test`, { token: a.token });
    expect(ping.status).toBe(202);
    const other = await buildWithHooks("/other");
    await completeJob(other.fleet, other.job);
    await deliver(sub.id);
    expect(received.filter((r) => r.path === "/ping").map((r) => verified(sub.secret, r))).toEqual([
      { type: "webhook.ping", timestamp: expect.any(String), data: { subscriptionId: sub.id } },
    ]);
    expect((await deliveries(a.token, sub.id)).map((d) => d.id)).toEqual([ping.body.eventId]);
  });

  it("stops delivering once the subscription is deleted", async () => {
    const { t, fleet, sub, job } = await buildWithHooks("/gone");
    script["/gone"] = [500];
    await completeJob(fleet, job);
    await deliver(sub.id);
    expect((await apiJson("DELETE", `/v1/webhooks/${sub.id}`, { token: t.token })).status).toBe(200);
    await runInDurableObject(stub(sub.id), async (instance: WebhookDelivery, state) => {
      expect(await state.storage.getAlarm()).toBeNull();
      await instance.alarm();
    });
    expect(received).toHaveLength(1);
  });
});
