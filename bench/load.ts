/**
 * `npm run bench:load`: mixed traffic against the Worker on `wrangler dev` (loopback, fresh local
 * D1/R2/DO state, the repository's wrangler.toml with its real request budgets), driven by
 * autocannon, as one deployment would see it:
 *  - API clients (6 addresses, one token each): cached resolves (`POST /v1/images` of a built
 *    5-layer chain) and log polls of a running build;
 *  - badge readers (many addresses): `GET /badges/<ws>/main.svg` of a public tag (edge cache);
 *  - a runner (one address): signed log-chunk events for the running build, retried on 429/503
 *    with the same webhook-id like the real runner;
 *  - an abusive client (one address, one token) hammering resolves far past its budget.
 * Baseline: `GET /healthz` throughput in the same run. Prints throughput, p50/p99 latency and
 * status counts per class, then checks that nothing answered 500 and that every runner event
 * that got a 2xx is in the build's log. Ends with one JSON line.
 *
 * The well-behaved classes send at fixed rates (autocannon `overallRate`); the abusive client
 * sends as fast as the Worker answers. The request budgets of wrangler.toml are sized for a
 * Cloudflare location, far above what one `wrangler dev` process serves, so the bench scales
 * them by KILN_LOAD_BUDGET_SCALE (default 0.05: 100 requests per 10 s per token) to put the
 * abusive client over its budget on this machine, as it would be at the edge.
 *
 * `cf-connecting-ip` is set per simulated client: wrangler dev keeps a client's value (Cloudflare
 * overwrites it in production), which is how one machine plays many addresses here.
 */

import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { newWebhookSecret, signWebhook } from "@kiln-build/protocol";
import autocannon from "autocannon";
import { startFleetRecorder } from "../test/node/fleet-recorder.ts";
import { ADMIN_TOKEN, startStack } from "../test/node/registry-harness.ts";
import { percentile } from "./stats.ts";

const DURATION_S = Number(process.env.KILN_LOAD_SECONDS ?? 60);
const BASELINE_S = Number(process.env.KILN_LOAD_BASELINE_SECONDS ?? 15);
const API_CLIENTS = 6;
const CONNECTIONS = { api: 12, badges: 8, runner: 4, abusive: 16 };
// Requests per second of the well-behaved classes (all their connections together).
const RATES = {
  api: Number(process.env.KILN_LOAD_API_RPS ?? 24),
  badges: Number(process.env.KILN_LOAD_BADGE_RPS ?? 24),
  runner: Number(process.env.KILN_LOAD_EVENT_RPS ?? 12),
};
const BUDGET_SCALE = Number(process.env.KILN_LOAD_BUDGET_SCALE ?? 0.05);

type Job = { jobId: string; attemptId: string; fencingToken: number; layers: { key: string; index: number; target: string }[] };
type Outcome = { count: number; statuses: Record<string, number>; latenciesMs: number[] };

function log(message: string): void {
  process.stdout.write(`bench:load: ${message}\n`);
}

// wrangler.toml with every `[[ratelimits]]` limit scaled to this machine (see the module comment).
const stack = await startStack({
  transformConfig: (toml) =>
    toml.replace(
      /simple = \{ limit = (\d+), period = (\d+) \}/g,
      (_, limit: string, period: string) =>
        `simple = { limit = ${Math.max(1, Math.round(Number(limit) * BUDGET_SCALE))}, period = ${period} }`,
    ),
});
const recorder = await startFleetRecorder();
const url = stack.url;

async function api(method: string, path: string, options: { token?: string; json?: unknown; headers?: Record<string, string> } = {}) {
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

function chainOf(n: number, seed: string) {
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

function signedEvent(secret: string, job: Job, event: Record<string, unknown>, webhookId: string) {
  const body = JSON.stringify({ jobId: job.jobId, attemptId: job.attemptId, fencingToken: job.fencingToken, ...event });
  return { body, headers: { ...signWebhook(secret, webhookId, body), "content-type": "application/json" } };
}

async function sendEvent(
  secret: string,
  job: Job,
  event: Record<string, unknown>,
  webhookId = `msg_${crypto.randomUUID()}`,
): Promise<number> {
  for (;;) {
    const { body, headers } = signedEvent(secret, job, event, webhookId);
    const response = await fetch(`${url}/v1/runner/events`, {
      method: "POST",
      headers: { ...headers, "cf-connecting-ip": "10.9.0.1" },
      body,
    });
    await response.arrayBuffer();
    if (response.status !== 429 && response.status !== 503) return response.status;
    await sleep(Number(response.headers.get("retry-after") ?? 1) * 1000);
  }
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const outcome = (): Outcome => ({ count: 0, statuses: {}, latenciesMs: [] });
function note(o: Outcome, status: number, startedAt: number | undefined): void {
  o.count++;
  o.statuses[status] = (o.statuses[status] ?? 0) + 1;
  if (startedAt !== undefined) o.latenciesMs.push(performance.now() - startedAt);
}
const summary = (o: Outcome, seconds: number) => ({
  requests: o.count,
  rps: round(o.count / seconds),
  p50Ms: round(percentile(o.latenciesMs, 50), 2),
  p99Ms: round(percentile(o.latenciesMs, 99), 2),
  statuses: o.statuses,
});

try {
  // Tenant, clients, fleet.
  const workspace = `load-${Date.now().toString(36)}`;
  await must(api("POST", "/v1/workspaces", { json: { name: workspace } }), 201, "create workspace");
  const admin = { "x-kiln-workspace": workspace };
  const tokens: string[] = [];
  for (let i = 0; i <= API_CLIENTS; i++) {
    tokens.push(
      (
        await must(
          api("POST", "/v1/tokens", {
            headers: admin,
            json: { name: `client-${i}`, scopes: ["images:read", "images:write", "tags:write"] },
          }),
          201,
          "create token",
        )
      ).token,
    );
  }
  const signingSecret = newWebhookSecret();
  await must(
    api("POST", "/v1/fleets", {
      headers: admin,
      json: { name: "recorder", url: `${recorder.url}/fleet/load/accept`, maxConcurrentBuilds: 8, signingSecret },
    }),
    201,
    "register fleet",
  );

  // A built 5-layer chain (the bench plays the runner), tagged public: cached resolves and badges.
  const chain = chainOf(5, workspace);
  const first = await must(
    api("POST", "/v1/images", { token: tokens[0], json: { builderVersion: "2025.06", layers: chain } }),
    202,
    "first submission",
  );
  const [dispatched] = await recorder.waitFor("load", 1, 30_000);
  if (!dispatched) throw new Error("the first build was never dispatched");
  const built = JSON.parse(dispatched.body) as Job;
  for (const event of [
    { type: "accepted" },
    ...built.layers.map((l) => ({
      type: "layer_succeeded",
      layerKey: l.key,
      digest: `sha256:${l.key}`,
      sizeBytes: 1024,
      reference: l.target,
    })),
    { type: "succeeded" },
  ]) {
    const status = await sendEvent(signingSecret, built, event);
    if (status !== 200) throw new Error(`completing the first build: ${event.type} answered ${status}`);
  }
  const cached = await must(
    api("POST", "/v1/images", { token: tokens[0], json: { builderVersion: "2025.06", layers: chain } }),
    200,
    "cached resolve",
  );
  await must(api("PUT", "/v1/tags/main", { token: tokens[0], json: { imageId: cached.id, public: true } }), 200, "tag");
  void first;

  // A running build: its log receives the runner's events and the clients' polls.
  const live = await must(
    api("POST", "/v1/images", { token: tokens[0], json: { builderVersion: "2025.06", layers: chainOf(2, `${workspace}-live`) } }),
    202,
    "live submission",
  );
  const liveJob = JSON.parse((await recorder.waitFor("load", 2, 30_000))[1]!.body) as Job;
  if ((await sendEvent(signingSecret, liveJob, { type: "accepted" })) !== 200) throw new Error("live build: accepted refused");
  const liveBuild = live.buildId as string;

  const resolveBody = JSON.stringify({ builderVersion: "2025.06", layers: chain });
  const seconds = DURATION_S;

  log(`baseline: GET /healthz for ${BASELINE_S} s with ${Object.values(CONNECTIONS).reduce((a, b) => a + b, 0)} connections`);
  const baseline = await autocannon({
    url: `${url}/healthz`,
    connections: Object.values(CONNECTIONS).reduce((a, b) => a + b, 0),
    duration: BASELINE_S,
  });

  // Per-class outcomes, measured per request (autocannon's own numbers are per instance).
  const out = { resolve: outcome(), logPoll: outcome(), badge: outcome(), event: outcome(), abusive: outcome() };
  let badgeHits = 0;
  let nextSeq = 0;
  let nextClient = 0;
  let viewer = 0;
  const retry: { seq: number; id: string }[] = [];
  const accepted = new Set<number>();
  const refused: Record<string, number> = {};
  type Ctx = { client?: number; startedAt?: number; seq?: number; id?: string };

  const apiRun = autocannon({
    url,
    connections: CONNECTIONS.api,
    overallRate: RATES.api,
    duration: seconds,
    requests: [
      {
        method: "POST",
        path: "/v1/images",
        setupRequest: (req, context: Ctx) => {
          context.client ??= nextClient++ % API_CLIENTS;
          context.startedAt = performance.now();
          return {
            ...req,
            body: resolveBody,
            headers: {
              authorization: `Bearer ${tokens[context.client + 1]}`,
              "content-type": "application/json",
              "cf-connecting-ip": `10.1.0.${context.client + 1}`,
            },
          };
        },
        onResponse: (status, _body, context: Ctx) => note(out.resolve, status, context.startedAt),
      },
      {
        method: "GET",
        setupRequest: (req, context: Ctx) => {
          context.startedAt = performance.now();
          const cursor = Math.max(0, accepted.size - 50);
          return {
            ...req,
            path: `/v1/builds/${liveBuild}/logs?cursor=${cursor}&limit=100`,
            headers: {
              authorization: `Bearer ${tokens[(context.client ?? 0) + 1]}`,
              "cf-connecting-ip": `10.1.0.${(context.client ?? 0) + 1}`,
            },
          };
        },
        onResponse: (status, _body, context: Ctx) => note(out.logPoll, status, context.startedAt),
      },
    ],
  });
  const badgeRun = autocannon({
    url,
    connections: CONNECTIONS.badges,
    overallRate: RATES.badges,
    duration: seconds,
    requests: [
      {
        method: "GET",
        path: `/badges/${workspace}/main.svg`,
        setupRequest: (req, context: Ctx) => {
          context.startedAt = performance.now();
          // Many viewers, each from its own address, as a popular README gets.
          return { ...req, headers: { "cf-connecting-ip": `10.2.${(viewer >> 8) & 255}.${viewer++ & 255}` } };
        },
        onResponse: (status, _body, context: Ctx, headers) => {
          note(out.badge, status, context.startedAt);
          if ((headers as Record<string, string> | undefined)?.["x-kiln-cache"] === "hit") badgeHits++;
        },
      },
    ],
  });
  const runnerRun = autocannon({
    url,
    connections: CONNECTIONS.runner,
    overallRate: RATES.runner,
    duration: seconds,
    requests: [
      {
        method: "POST",
        path: "/v1/runner/events",
        setupRequest: (req, context: Ctx) => {
          const again = retry.shift();
          context.seq = again?.seq ?? nextSeq++;
          context.id = again?.id ?? `msg_${crypto.randomUUID()}`;
          context.startedAt = performance.now();
          // Signed at send time (fresh timestamp), with the same webhook-id on a retry.
          const { body, headers } = signedEvent(
            signingSecret,
            liveJob,
            { type: "log", seq: context.seq, layerKey: null, stream: "stdout", data: `evt ${context.seq}\n` },
            context.id,
          );
          return { ...req, body, headers: { ...headers, "cf-connecting-ip": "10.9.0.1" } };
        },
        onResponse: (status, body, context: Ctx) => {
          note(out.event, status, context.startedAt);
          const seq = context.seq!;
          if (status === 200) accepted.add(seq);
          else if (status === 409 && body.includes("duplicate_event"))
            accepted.add(seq); // delivered before; the answer was lost
          else {
            refused[status] = (refused[status] ?? 0) + 1;
            // 429/503 and log_gap_too_large: the runner resends the same event later.
            retry.push({ seq, id: context.id! });
          }
        },
      },
    ],
  });
  const abusiveRun = autocannon({
    url,
    connections: CONNECTIONS.abusive,
    duration: seconds,
    requests: [
      {
        method: "POST",
        path: "/v1/images",
        setupRequest: (req, context: Ctx) => {
          context.startedAt = performance.now();
          return {
            ...req,
            body: resolveBody,
            headers: { authorization: `Bearer ${tokens[0]}`, "content-type": "application/json", "cf-connecting-ip": "10.66.6.6" },
          };
        },
        onResponse: (status, _body, context: Ctx) => note(out.abusive, status, context.startedAt),
      },
    ],
  });
  log(
    `mixed traffic for ${seconds} s: API ${RATES.api}/s, badges ${RATES.badges}/s, runner events ${RATES.runner}/s, and an abusive client on ${CONNECTIONS.abusive} connections; budgets x${BUDGET_SCALE}`,
  );
  const runs = await Promise.all([apiRun, badgeRun, runnerRun, abusiveRun]);

  // The runner delivers what is still pending (in order), then finishes the build.
  retry.sort((a, b) => a.seq - b.seq);
  for (const pending of retry.splice(0)) {
    const status = await sendEvent(
      signingSecret,
      liveJob,
      { type: "log", seq: pending.seq, layerKey: null, stream: "stdout", data: `evt ${pending.seq}\n` },
      pending.id,
    );
    if (status === 200 || status === 409) accepted.add(pending.seq);
  }
  for (const event of [
    ...liveJob.layers.map((l) => ({
      type: "layer_succeeded",
      layerKey: l.key,
      digest: `sha256:${l.key}`,
      sizeBytes: 1,
      reference: l.target,
    })),
    { type: "succeeded" },
  ]) {
    await sendEvent(signingSecret, liveJob, event);
  }
  // Read the whole log back: every accepted event must be there exactly once.
  const seen = new Map<number, number>();
  let cursor = 0;
  for (let page = 0; page < 100_000; page++) {
    const r = await api("GET", `/v1/builds/${liveBuild}/logs?cursor=${cursor}&limit=1000`, { token: tokens[1] });
    if (r.status !== 200) throw new Error(`reading the log back: ${r.status} ${JSON.stringify(r.body)}`);
    for (const chunk of r.body.chunks as { data: string }[]) {
      const match = /^evt (\d+)\n$/.exec(chunk.data);
      if (match) seen.set(Number(match[1]), (seen.get(Number(match[1])) ?? 0) + 1);
    }
    if (r.body.done || r.body.cursor === cursor) {
      if (r.body.done) break;
      await sleep(200);
    }
    cursor = r.body.cursor;
  }
  const lost = [...accepted].filter((seq) => !seen.has(seq));
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([seq]) => seq);

  const all = Object.values(out);
  const total = all.reduce((n, o) => n + o.count, 0);
  const statusTotals: Record<string, number> = {};
  for (const o of all) for (const [s, n] of Object.entries(o.statuses)) statusTotals[s] = (statusTotals[s] ?? 0) + n;
  const serverErrors = Object.entries(statusTotals)
    .filter(([s]) => Number(s) >= 500 && Number(s) !== 503)
    .reduce((n, [, c]) => n + c, 0);
  const shed = (statusTotals["429"] ?? 0) + (statusTotals["503"] ?? 0);
  const socketErrors = runs.reduce((n, r) => n + r.errors + r.timeouts, 0);
  const latencies = all.flatMap((o) => o.latenciesMs);
  const kiln = { rps: round(total / seconds), p50Ms: round(percentile(latencies, 50), 2), p99Ms: round(percentile(latencies, 99), 2) };
  const base = { rps: round(baseline.requests.average), p50Ms: baseline.latency.p50, p99Ms: baseline.latency.p99 };

  log(`baseline GET /healthz: ${base.rps} req/s, p50 ${base.p50Ms} ms, p99 ${base.p99Ms} ms`);
  for (const [name, o] of Object.entries(out)) {
    const s = summary(o, seconds);
    log(
      `${name.padEnd(8)} ${String(s.rps).padStart(7)} req/s  p50 ${String(s.p50Ms).padStart(7)} ms  p99 ${String(s.p99Ms).padStart(7)} ms  ${JSON.stringify(s.statuses)}`,
    );
  }
  log(
    `total ${kiln.rps} req/s (ratio to /healthz ${round(kiln.rps / base.rps, 3)}), p50 ${kiln.p50Ms} ms, p99 ${kiln.p99Ms} ms; shed (429/503) ${shed}; 5xx other than 503: ${serverErrors}; socket errors/timeouts ${socketErrors}`,
  );
  log(
    `badge edge-cache hits ${badgeHits}/${out.badge.count}; runner events accepted ${accepted.size}, refused and retried ${JSON.stringify(refused)}, lost ${lost.length}, duplicated ${duplicated.length}`,
  );

  console.log(
    JSON.stringify({
      name: "load",
      kiln,
      baseline: { healthz: base },
      ratio: round(kiln.rps / base.rps, 3),
      target: { serverErrors: 0, lostAcceptedRunnerEvents: 0, shedsWith: [429, 503] },
      ok: serverErrors === 0 && lost.length === 0 && duplicated.length === 0,
      durationSeconds: seconds,
      rates: RATES,
      budgetScale: BUDGET_SCALE,
      // Other work on the machine slows wrangler dev: read throughput with the load average.
      machine: { cpus: os.cpus().length, loadAverage1m: round(os.loadavg()[0]!, 2) },
      classes: Object.fromEntries(Object.entries(out).map(([k, o]) => [k, summary(o, seconds)])),
      statuses: statusTotals,
      shed,
      serverErrors,
      socketErrors,
      badgeEdgeHitRatio: round(badgeHits / Math.max(1, out.badge.count), 3),
      runnerEvents: { accepted: accepted.size, lost: lost.length, duplicated: duplicated.length, refusedThenRetried: refused },
    }),
  );
  if (serverErrors > 0 || lost.length > 0 || duplicated.length > 0) process.exitCode = 1;
} finally {
  await recorder.close();
  await stack.stop();
}
