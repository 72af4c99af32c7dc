/**
 * `npm run bench:orchestrator`: the orchestrator on `wrangler dev` (loopback, fresh local state),
 * with a local recording HTTP server playing the runner fleet. Measures, in one run:
 *  - cached-resolve latency of a 20-layer chain (`POST /v1/images`, every layer cached, resubmitted
 *    as the SDK does on every `image.build()`) against `GET /healthz`, interleaved request by
 *    request, p50 and p99 (target ratio <= 1.5); and, reported apart, the first resolve of
 *    each cached prefix, which the isolate has not answered before (D1's read + one insert);
 *  - D1 statements per cached resolve, from the Worker's `Server-Timing` header (target 1 for
 *    the resolve itself; the token lookup of the shared auth middleware is reported apart);
 *  - 500 concurrent identical submissions of an uncached chain: dispatches received (target
 *    exactly 1) and the submissions' p99 latency.
 * The bench plays the runner of the two builds it needs (bench/fake-runner-push.ts: a tiny image
 * pushed through `/v2` for each layer it reports); those pushes happen outside every measured path.
 * Ends with one JSON line. Environment: KILN_BENCH_PORT (8797), KILN_BENCH_SAMPLES (400),
 * KILN_BENCH_PROBE=1 (also times an authenticated one-statement GET, to separate D1's cost).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { newWebhookSecret, signWebhook } from "@kiln-build/protocol";
import { startFleetRecorder } from "../test/node/fleet-recorder.ts";
import { type PushJob, pushAndReportLayers } from "./fake-runner-push.ts";
import { percentile, round } from "./stats.ts";

const PORT = Number(process.env.KILN_BENCH_PORT ?? 8797);
const ORIGIN = `http://127.0.0.1:${PORT}`;
const ADMIN = "kiln-bench-admin-token-0123456789abcdef";
const SECRET_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff)).toString("base64");
const LAYERS = 20;
const SAMPLES = Number(process.env.KILN_BENCH_SAMPLES ?? 400);
const WARMUP = 50;
const CONCURRENT = 500;
const RATIO_TARGET = 1.5;

type Job = PushJob & { jobId: string; attemptId: string; fencingToken: number };

const state = mkdtempSync(path.join(os.tmpdir(), "kiln-bench-"));
const recorder = await startFleetRecorder();
let worker: ReturnType<typeof spawn> | null = null;

function log(message: string): void {
  process.stdout.write(`bench: ${message}\n`);
}

async function call(method: string, route: string, options: { token?: string; json?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  const started = performance.now();
  const response = await fetch(`${ORIGIN}${route}`, {
    method,
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
  });
  const text = await response.text();
  return { ms: performance.now() - started, status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
}

async function expectStatus<T = any>(promise: ReturnType<typeof call>, status: number, what: string): Promise<T> {
  const r = await promise;
  if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body as T;
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

async function runnerEvent(secret: string, job: Job, event: Record<string, unknown>): Promise<void> {
  const body = JSON.stringify({ jobId: job.jobId, attemptId: job.attemptId, fencingToken: job.fencingToken, ...event });
  const headers = { ...signWebhook(secret, `msg_${crypto.randomUUID()}`, body), "content-type": "application/json" };
  const response = await fetch(`${ORIGIN}/v1/runner/events`, { method: "POST", headers, body });
  const text = await response.text();
  // A refused layer report answers 200 with `cancel` (the attempt failed): refused all the same.
  if (response.status !== 200 || (JSON.parse(text) as { cancel?: boolean }).cancel)
    throw new Error(`runner event ${String(event.type)} refused: ${response.status} ${text}`);
}

// Plays the runner: every layer built (a tiny image pushed to its target, its digest reported), then the job succeeded.
async function complete(secret: string, job: Job): Promise<void> {
  await runnerEvent(secret, job, { type: "accepted" });
  await pushAndReportLayers(ORIGIN, job, (event) => runnerEvent(secret, job, event));
  await runnerEvent(secret, job, { type: "succeeded" });
}

// The repository's wrangler.toml with absolute paths and without top-level [[ratelimits]] tables.
function benchConfig(toml: string): string {
  const root = process.cwd();
  const kept: string[] = [];
  let skipping = false;
  for (const line of toml.split("\n")) {
    if (/^\s*\[/.test(line)) skipping = line.trim() === "[[ratelimits]]";
    if (!skipping) kept.push(line);
  }
  return kept
    .join("\n")
    .replace(/^main = "(.*)"$/m, (_, p: string) => `main = ${JSON.stringify(path.join(root, p))}`)
    .replace(/^migrations_dir = "(.*)"$/gm, (_, p: string) => `migrations_dir = ${JSON.stringify(path.join(root, p))}`);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function stop(): void {
  if (worker?.pid) {
    try {
      process.kill(-worker.pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
}

try {
  log(`applying D1 migrations into ${state}`);
  const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, CI: "true" },
  });
  if (migrate.status !== 0) throw new Error("wrangler d1 migrations apply failed");

  // Serve a bundle made once, so edits to the source tree during the run cannot restart the Worker
  // mid-measurement, with the repository's config minus the request budgets ([[ratelimits]]): the
  // bench sends 400 sequential and 500 concurrent requests with one token from one address, which
  // those flood guards exist to refuse; they are not what is measured here.
  const config = path.join(state, "wrangler.toml");
  writeFileSync(config, benchConfig(readFileSync("wrangler.toml", "utf8")));
  const bundle = path.join(state, "dist");
  const built = spawnSync("wrangler", ["deploy", "--dry-run", "--outdir", bundle, "--config", config, "--env", ""], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (built.status !== 0) throw new Error("bundling the Worker (wrangler deploy --dry-run) failed");
  log(`starting wrangler dev on ${ORIGIN}`);
  worker = spawn(
    "wrangler",
    [
      "dev",
      path.join(bundle, "index.js"),
      "--config",
      config,
      "--env",
      "",
      "--no-bundle",
      "--ip",
      "127.0.0.1",
      "--port",
      String(PORT),
      "--persist-to",
      state,
      "--show-interactive-dev-session=false",
      "--log-level",
      "warn",
      "--var",
      `KILN_ADMIN_TOKEN:${ADMIN}`,
      "--var",
      `KILN_SECRET_KEY:${SECRET_KEY}`,
    ],
    { stdio: ["ignore", "ignore", "inherit"], detached: true },
  );
  process.on("exit", stop);
  let up = false;
  for (let i = 0; i < 240 && !up; i++) {
    up = await fetch(`${ORIGIN}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (!up) await sleep(250);
  }
  if (!up) throw new Error("wrangler dev did not come up within 60 s");

  // Tenant and fleet through the admin API (the bootstrap admin token from --var).
  const name = `bench-${Date.now().toString(36)}`;
  await expectStatus(call("POST", "/v1/workspaces", { token: ADMIN, json: { name } }), 201, "create workspace");
  const { token } = await expectStatus<{ token: string }>(
    call("POST", "/v1/tokens", {
      token: ADMIN,
      headers: { "x-kiln-workspace": name },
      json: { name: "bench", scopes: ["images:read", "images:write"] },
    }),
    201,
    "create token",
  );
  const signingSecret = newWebhookSecret();
  await expectStatus(
    call("POST", "/v1/fleets", {
      token: ADMIN,
      headers: { "x-kiln-workspace": name },
      json: { name: "recorder", url: `${recorder.url}/fleet/bench/accept`, maxConcurrentBuilds: 8, signingSecret },
    }),
    201,
    "register fleet",
  );

  // Build the 20-layer chain once (the bench is the runner), so every later submission is cached.
  const chain = chainOf(LAYERS, name);
  const submit = (layers: unknown[]) => call("POST", "/v1/images", { token, json: { builderVersion: "2025.06", layers } });
  const first = await submit(chain);
  if (first.status !== 202) throw new Error(`first submission: ${first.status} ${JSON.stringify(first.body)}`);
  const [dispatched] = await recorder.waitFor("bench", 1, 30_000);
  if (!dispatched) throw new Error("the first build was never dispatched");
  await complete(signingSecret, JSON.parse(dispatched.body) as Job);
  const check = await submit(chain);
  if (check.status !== 200 || check.body.status !== "succeeded")
    throw new Error(`chain not cached after its build: ${check.status} ${JSON.stringify(check.body)}`);

  // First resolves: each prefix of the chain is itself a fully cached chain this isolate has
  // never answered, so each costs D1's read plus the one-time insert of its image row.
  log(`first cached resolve of each of the chain's ${LAYERS} prefixes (not yet remembered by the isolate) vs GET /healthz`);
  const firstHealthz: number[] = [];
  const firstResolve: number[] = [];
  const firstQueries: number[] = [];
  for (let n = 1; n <= LAYERS; n++) {
    firstHealthz.push((await call("GET", "/healthz")).ms);
    const r = await submit(chain.slice(0, n));
    if (r.status !== 200) throw new Error(`first resolve of a cached prefix failed: ${r.status}`);
    firstResolve.push(r.ms);
    firstQueries.push(Number(/d1-handler;desc="queries=(\d+)"/.exec(r.headers.get("server-timing") ?? "")?.[1] ?? NaN));
  }
  const first50 = { kiln: percentile(firstResolve, 50), base: percentile(firstHealthz, 50) };
  log(
    `first resolve p50 ${first50.kiln.toFixed(2)} ms vs healthz ${first50.base.toFixed(2)} ms (ratio ${(first50.kiln / first50.base).toFixed(2)}); D1 statements ${mean(firstQueries)} (one read + the image row's one-time insert)`,
  );

  log(`repeated cached resolve of ${LAYERS} layers vs GET /healthz: ${WARMUP} warm-up + ${SAMPLES} samples each, interleaved`);
  const healthz: number[] = [];
  const resolve: number[] = [];
  const queries: string[] = [];
  const probe: number[] = [];
  for (let i = 0; i < WARMUP + SAMPLES; i++) {
    const h = await call("GET", "/healthz");
    if (process.env.KILN_BENCH_PROBE) probe.push((await call("GET", "/v1/images/im-none", { token })).ms);
    const r = await submit(chain);
    if (r.status !== 200) throw new Error(`cached resolve failed: ${r.status}`);
    if (i < WARMUP) continue;
    healthz.push(h.ms);
    resolve.push(r.ms);
    queries.push(r.headers.get("server-timing") ?? "");
  }
  if (probe.length) log(`probe GET /v1/images/im-none (auth + 1 query): p50 ${percentile(probe.slice(WARMUP), 50).toFixed(2)} ms`);
  const handlerQueries = mean(queries.map((t) => Number(/d1-handler;desc="queries=(\d+)"/.exec(t)?.[1] ?? NaN)));
  const totalQueries = mean(queries.map((t) => Number(/d1;desc="queries=(\d+)"/.exec(t)?.[1] ?? NaN)));
  const kiln = { p50: percentile(resolve, 50), p99: percentile(resolve, 99) };
  const base = { p50: percentile(healthz, 50), p99: percentile(healthz, 99) };
  const ratio = { p50: kiln.p50 / base.p50, p99: kiln.p99 / base.p99 };
  log(
    `cached resolve p50 ${kiln.p50.toFixed(2)} ms p99 ${kiln.p99.toFixed(2)} ms; healthz p50 ${base.p50.toFixed(2)} ms p99 ${base.p99.toFixed(2)} ms; ratio p50 ${ratio.p50.toFixed(2)} p99 ${ratio.p99.toFixed(2)} (target <= ${RATIO_TARGET})`,
  );
  log(
    `D1 statements per repeated cached resolve: ${handlerQueries} (target <= 1; remembered by the isolate); per request with the token lookup: ${totalQueries.toFixed(3)} (the token cache refreshes every 10 s)`,
  );

  log(`${CONCURRENT} concurrent identical submissions of an uncached chain`);
  const fresh = chainOf(3, `${name}-dedupe`);
  const burst = await Promise.all(Array.from({ length: CONCURRENT }, () => submit(fresh)));
  const accepted = burst.filter((r) => r.status === 202).length;
  const buildIds = new Set(burst.map((r) => r.body?.buildId));
  const latencies = burst.map((r) => r.ms);
  const dedupe = { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  await recorder.waitFor("bench", 2, 30_000);
  // Give a duplicate every chance to show up before counting.
  await sleep(3_000);
  const dispatches = recorder.records("bench").length - 1;
  const job = JSON.parse(recorder.records("bench")[1]!.body) as Job;
  await complete(signingSecret, job);
  const views = await Promise.all(burst.map((r) => call("GET", `/v1/images/${r.body.id}`, { token })));
  const sameResult =
    new Set(views.map((v) => JSON.stringify([v.body.status, v.body.layers.map((l: { digest: string }) => l.digest)]))).size === 1 &&
    views[0]!.body.status === "succeeded";
  log(
    `accepted ${accepted}/${CONCURRENT}, builds ${buildIds.size}, dispatches ${dispatches} (target 1), all saw the same result: ${sameResult}; latency p50 ${dedupe.p50.toFixed(1)} ms p99 ${dedupe.p99.toFixed(1)} ms`,
  );

  console.log(
    JSON.stringify({
      name: "orchestrator",
      kiln: { cachedResolveP50Ms: round(kiln.p50), cachedResolveP99Ms: round(kiln.p99), layers: LAYERS, samples: SAMPLES },
      baseline: { healthzP50Ms: round(base.p50), healthzP99Ms: round(base.p99) },
      ratio: { p50: round(ratio.p50), p99: round(ratio.p99) },
      target: { ratio: RATIO_TARGET, d1QueriesPerCachedResolve: 1, dispatches: 1 },
      d1QueriesPerCachedResolve: handlerQueries,
      firstResolve: {
        p50Ms: round(first50.kiln),
        healthzP50Ms: round(first50.base),
        ratio: round(first50.kiln / first50.base),
        d1Queries: mean(firstQueries),
        samples: LAYERS,
      },
      d1QueriesPerCachedRequestInclAuth: round(totalQueries),
      dedupe: {
        submissions: CONCURRENT,
        accepted,
        builds: buildIds.size,
        dispatches,
        sameResult,
        p50Ms: round(dedupe.p50),
        p99Ms: round(dedupe.p99),
      },
    }),
  );
} finally {
  stop();
  await recorder.close();
  rmSync(state, { recursive: true, force: true });
}
