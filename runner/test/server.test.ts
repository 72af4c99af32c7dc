// The dispatch endpoint: Standard Webhooks verification (bad signature, tampered body,
// stale and future timestamps, missing headers, secret rotation), replay protection by
// webhook-id, the protocol-version check, job validation, queue limits and the
// unauthenticated info routes.
import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Job } from "@kiln-build/protocol";
import { KILN_VERSION, PROTOCOL_VERSION, signWebhook } from "@kiln-build/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { OfferResult } from "../src/job-queue.ts";
import { silentLogger } from "../src/logger.ts";
import { createDispatchServer } from "../src/server.ts";
import { FakeOrchestrator } from "./helpers/fake-orchestrator.ts";
import { layer, makeJob, testSecret } from "./helpers/jobs.ts";

let secret: string;
let oldSecret: string;
let server: Server;
let url: string;
let dispatched: Job[];
let answer: OfferResult;
let fake: FakeOrchestrator;

beforeEach(async () => {
  secret = testSecret();
  oldSecret = testSecret();
  dispatched = [];
  answer = "queued";
  fake = await FakeOrchestrator.start(secret);
  server = createDispatchServer({
    secrets: [secret, oldSecret],
    maxBodyBytes: 64 * 1024,
    logger: silentLogger,
    dispatch: (job) => (dispatched.push(job), answer),
    capabilities: () => ({ backend: "buildah", gpus: [] }),
    health: () => ({ ok: true }),
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  server.close();
  await fake.close();
});

const job = () =>
  makeJob({ orchestrator: fake, registryHost: "127.0.0.1:5000", layers: [layer(0, "x", ["FROM busybox"], "127.0.0.1:5000")] });

async function post(
  body: string,
  headers: Record<string, string>,
): Promise<{
  status: number;
  json: { error?: { code: string; message: string; details?: unknown[] }; duplicate?: boolean; ok?: boolean };
}> {
  const response = await fetch(`${url}/v1/jobs`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  return { status: response.status, json: (await response.json()) as never };
}

const signed = (body: string, key = secret, id = `msg_${randomUUID()}`, at = new Date()) => signWebhook(key, id, body, at);

describe("POST /v1/jobs", () => {
  it("accepts a correctly signed job with 202 and queues it", async () => {
    const body = JSON.stringify(job());
    const result = await post(body, signed(body));
    expect(result).toMatchObject({ status: 202, json: { ok: true, duplicate: false } });
    expect(dispatched).toHaveLength(1);
  });

  it("accepts jobs signed with any configured secret (rotation)", async () => {
    const body = JSON.stringify(job());
    expect((await post(body, signed(body, oldSecret))).status).toBe(202);
  });

  it("refuses a wrong signature, a tampered body and missing headers with 401, and runs nothing", async () => {
    const body = JSON.stringify(job());
    expect(await post(body, signed(body, testSecret()))).toMatchObject({ status: 401, json: { error: { code: "bad_signature" } } });
    const headers = signed(body);
    expect(await post(body.replace("ws_test", "ws_evil"), headers)).toMatchObject({
      status: 401,
      json: { error: { code: "bad_signature" } },
    });
    expect(await post(body, {})).toMatchObject({ status: 401, json: { error: { code: "missing_headers" } } });
    expect(dispatched).toEqual([]);
  });

  it("refuses stale and future timestamps", async () => {
    const body = JSON.stringify(job());
    expect(await post(body, signed(body, secret, undefined, new Date(Date.now() - 10 * 60_000)))).toMatchObject({
      status: 401,
      json: { error: { code: "stale_timestamp" } },
    });
    expect(await post(body, signed(body, secret, undefined, new Date(Date.now() + 10 * 60_000)))).toMatchObject({
      status: 401,
      json: { error: { code: "stale_timestamp" } },
    });
    expect(dispatched).toEqual([]);
  });

  it("refuses a replayed webhook-id with 409 and builds once", async () => {
    const body = JSON.stringify(job());
    const headers = signed(body);
    expect((await post(body, headers)).status).toBe(202);
    expect(await post(body, headers)).toMatchObject({ status: 409, json: { error: { code: "replayed" } } });
    expect(dispatched).toHaveLength(1);
  });

  it("refuses bodies that are not JSON, not a job, or too large", async () => {
    // The shared verifier (standardwebhooks) parses the payload as JSON, so non-JSON fails verification.
    expect((await post("{nope", signed("{nope"))).status).toBe(401);
    const extra = JSON.stringify({ ...job(), surprise: true });
    const invalid = await post(extra, signed(extra));
    expect(invalid).toMatchObject({ status: 400, json: { error: { code: "invalid_job" } } });
    expect(invalid.json.error?.details?.length).toBeGreaterThan(0);
    const huge = JSON.stringify({ ...job(), workspaceId: "x".repeat(100_000) });
    expect(await post(huge, signed(huge))).toMatchObject({ status: 413, json: { error: { code: "payload_too_large" } } });
    expect(dispatched).toEqual([]);
  });

  it("answers 503 with Retry-After when the queue is full, and 202 for a re-delivered attempt", async () => {
    answer = "full";
    const body = JSON.stringify(job());
    const response = await fetch(`${url}/v1/jobs`, { method: "POST", headers: signed(body), body });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("30");
    answer = "duplicate";
    expect(await post(body, signed(body))).toMatchObject({ status: 202, json: { duplicate: true } });
  });
});

describe("protocol version", () => {
  it("accepts a job of the version this runner speaks", async () => {
    const body = JSON.stringify(job());
    expect((await post(body, signed(body))).status).toBe(202);
    expect(dispatched.map((j) => j.protocolVersion)).toEqual([PROTOCOL_VERSION]);
  });

  it("refuses a newer job with 400 protocol_unsupported before validating it, naming the runner release to install", async () => {
    // A future job may differ anywhere: the version, not its unknown fields, is what the answer is about.
    const body = JSON.stringify({ ...job(), protocolVersion: PROTOCOL_VERSION + 1, somethingNew: { x: 1 } });
    const result = await post(body, { ...signed(body), "user-agent": "kiln-orchestrator/9.4.0" });
    expect(result).toMatchObject({ status: 400, json: { error: { code: "protocol_unsupported" } } });
    const message = result.json.error!.message;
    expect(message).toContain(`The job speaks Kiln runner protocol ${PROTOCOL_VERSION + 1}`);
    expect(message).toContain(`this runner (@kiln-build/runner ${KILN_VERSION}) speaks protocol ${PROTOCOL_VERSION}`);
    expect(message).toContain("Upgrade the runner to the orchestrator's release (npm install -g @kiln-build/runner@9.4.0)");
    expect(result.json.error).not.toHaveProperty("details");
    expect(dispatched).toEqual([]);
  });

  it("refuses a job without a version (an older orchestrator), saying to upgrade the orchestrator or match the runner to it", async () => {
    const { protocolVersion: _, ...unversioned } = job();
    const body = JSON.stringify(unversioned);
    // Older orchestrators send `kiln-orchestrator/1`, which names no release.
    const result = await post(body, { ...signed(body), "user-agent": "kiln-orchestrator/1" });
    expect(result).toMatchObject({ status: 400, json: { error: { code: "protocol_unsupported" } } });
    expect(result.json.error!.message).toBe(
      `The job carries no protocolVersion (its orchestrator predates versioned jobs), but this runner (@kiln-build/runner ${KILN_VERSION}) speaks protocol ${PROTOCOL_VERSION}. ` +
        `Upgrade the orchestrator to Kiln ${KILN_VERSION}, or install the runner of the orchestrator's release (npm install -g @kiln-build/runner@<the orchestrator's Kiln version>) and restart it.`,
    );
    for (const protocolVersion of [0, "1", 1.5]) {
      const odd = JSON.stringify({ ...job(), protocolVersion });
      const refused = await post(odd, signed(odd));
      expect(refused).toMatchObject({ status: 400, json: { error: { code: "protocol_unsupported" } } });
      expect(refused.json.error!.message).toContain(`carries an invalid protocolVersion (${JSON.stringify(protocolVersion)})`);
    }
    expect(dispatched).toEqual([]);
  });

  it("checks the signature first, and answers the orchestrator's signing probe with invalid_job as before", async () => {
    const body = JSON.stringify({ ...job(), protocolVersion: PROTOCOL_VERSION + 1 });
    expect(await post(body, signed(body, testSecret()))).toMatchObject({ status: 401, json: { error: { code: "bad_signature" } } });
    // workers/fleet-probe.ts: a signed non-job whose 400 invalid_job proves the signature to `kiln doctor`.
    const probe = JSON.stringify({ kind: "kiln.probe", sentAt: new Date().toISOString() });
    expect(await post(probe, signed(probe))).toMatchObject({ status: 400, json: { error: { code: "invalid_job" } } });
    expect(dispatched).toEqual([]);
  });
});

describe("info routes", () => {
  it("serves health and capabilities, and 404/405 elsewhere", async () => {
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ ok: true });
    expect(await (await fetch(`${url}/v1/capabilities`)).json()).toEqual({ backend: "buildah", gpus: [] });
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/v1/jobs`)).status).toBe(405);
  });
});
