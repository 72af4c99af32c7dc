/** HTTP helpers of `npm run bench:load`: the admin/client API, layer chains, and signed runner events. */
import { setTimeout as sleep } from "node:timers/promises";
import { signWebhook } from "@kiln-build/protocol";
import { ADMIN_TOKEN } from "../test/node/registry-harness.ts";
import { type PushJob, pushAndReportLayers } from "./fake-runner-push.ts";

/** The parts of a dispatched runner job the bench plays the runner with. */
export type Job = PushJob & { jobId: string; attemptId: string; fencingToken: number };

/** The address the simulated runner sends from (its events and its registry pushes). */
const RUNNER_ADDRESS = { "cf-connecting-ip": "10.9.0.1" };

type ApiOptions = { token?: string; json?: unknown; headers?: Record<string, string> };

/** Requests against the Worker at `url`, as a client (`api`, `must`) and as the runner (`sendEvent`, `report`, `buildLayers`). */
export function loadApi(url: string) {
  async function api(method: string, path: string, options: ApiOptions = {}) {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token ?? ADMIN_TOKEN}`, ...options.headers };
    if (options.json !== undefined) headers["content-type"] = "application/json";
    // Like the SDK: a spent budget (429) is waited out, then the request is sent again.
    for (;;) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers,
        body: options.json === undefined ? undefined : JSON.stringify(options.json),
      });
      const text = await response.text();
      if (response.status === 429) {
        await sleep(Number(response.headers.get("retry-after") ?? 1) * 1000);
        continue;
      }
      return { status: response.status, body: text ? JSON.parse(text) : null };
    }
  }

  async function must(promise: ReturnType<typeof api>, status: number, what: string) {
    const r = await promise;
    if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  // Delivers a runner event, retried with the same webhook-id on 429/503 like the real runner.
  async function deliver(secret: string, job: Job, event: Record<string, unknown>, webhookId: string) {
    for (;;) {
      const { body, headers } = signedEvent(secret, job, event, webhookId);
      const response = await fetch(`${url}/v1/runner/events`, { method: "POST", headers: { ...headers, ...RUNNER_ADDRESS }, body });
      const text = await response.text();
      if (response.status !== 429 && response.status !== 503) return { status: response.status, text };
      await sleep(Number(response.headers.get("retry-after") ?? 1) * 1000);
    }
  }

  async function sendEvent(
    secret: string,
    job: Job,
    event: Record<string, unknown>,
    webhookId = `msg_${crypto.randomUUID()}`,
  ): Promise<number> {
    return (await deliver(secret, job, event, webhookId)).status;
  }

  /** Sends a runner event that must be taken: 200 and not told to stop (a refused layer report answers `cancel`). */
  async function report(secret: string, job: Job, event: Record<string, unknown>): Promise<void> {
    const { status, text } = await deliver(secret, job, event, `msg_${crypto.randomUUID()}`);
    if (status !== 200 || (JSON.parse(text) as { cancel?: boolean }).cancel)
      throw new Error(`runner event ${String(event.type)} refused: ${status} ${text}`);
  }

  /** Plays the runner's layers of `job`: pushes a tiny image for each (bench/fake-runner-push.ts) and reports its digest. */
  function buildLayers(secret: string, job: Job): Promise<void> {
    return pushAndReportLayers(url, job, (event) => report(secret, job, event), RUNNER_ADDRESS);
  }

  return { api, must, sendEvent, report, buildLayers };
}

/** The client helpers `loadApi` returns. */
export type LoadApi = ReturnType<typeof loadApi>;

/** A chain of `n` busybox layers whose keys `seed` makes unique. */
export function chainOf(n: number, seed: string) {
  return Array.from({ length: n }, (_, i) => ({
    dockerfileCommands: [i === 0 ? "FROM busybox:1.36" : "FROM base", `RUN echo ${seed} ${i}`],
    context: null,
    secrets: [],
    gpu: null,
    buildArgs: {},
    registryAuth: null,
    buildFunction: null,
    pythonStandalone: null,
    forceBuild: false,
  }));
}

/** A runner event for `job`, signed with `webhookId` (kept across retries, as the real runner does). */
export function signedEvent(secret: string, job: Job, event: Record<string, unknown>, webhookId: string) {
  const body = JSON.stringify({ jobId: job.jobId, attemptId: job.attemptId, fencingToken: job.fencingToken, ...event });
  return { body, headers: { ...signWebhook(secret, webhookId, body), "content-type": "application/json" } };
}
