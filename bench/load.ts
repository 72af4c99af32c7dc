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
 *
 * The parts: load-setup.ts (the workspace and builds), load-traffic.ts (the four classes),
 * load-api.ts (requests and signed events), load-outcomes.ts, load-config.ts (KILN_LOAD_*).
 */

import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon from "autocannon";
import { startFleetRecorder } from "../test/node/fleet-recorder.ts";
import { startStack } from "../test/node/registry-harness.ts";
import { loadApi } from "./load-api.ts";
import { BASELINE_S, BUDGET_SCALE, CONNECTIONS, DURATION_S, RATES } from "./load-config.ts";
import { round, summary } from "./load-outcomes.ts";
import { setUpLoad } from "./load-setup.ts";
import { startTraffic } from "./load-traffic.ts";
import { percentile } from "./stats.ts";

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
const client = loadApi(url);
const { api, sendEvent, report, buildLayers } = client;

try {
  const setup = await setUpLoad(client, recorder);
  const { tokens, signingSecret, liveJob, liveBuild } = setup;
  const seconds = DURATION_S;

  log(`baseline: GET /healthz for ${BASELINE_S} s with ${Object.values(CONNECTIONS).reduce((a, b) => a + b, 0)} connections`);
  const baseline = await autocannon({
    url: `${url}/healthz`,
    connections: Object.values(CONNECTIONS).reduce((a, b) => a + b, 0),
    duration: BASELINE_S,
  });

  const { traffic, runs: running } = startTraffic(url, setup, seconds);
  const { out, retry, accepted, refused } = traffic;
  log(
    `mixed traffic for ${seconds} s: API ${RATES.api}/s, badges ${RATES.badges}/s, runner events ${RATES.runner}/s, and an abusive client on ${CONNECTIONS.abusive} connections; budgets x${BUDGET_SCALE}`,
  );
  const runs = await running;

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
  // After the measured traffic: a tiny image pushed for each layer, its digest reported, then success.
  await buildLayers(signingSecret, liveJob);
  await report(signingSecret, liveJob, { type: "succeeded" });
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
    `badge edge-cache hits ${traffic.badgeHits}/${out.badge.count}; runner events accepted ${accepted.size}, refused and retried ${JSON.stringify(refused)}, lost ${lost.length}, duplicated ${duplicated.length}`,
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
      badgeEdgeHitRatio: round(traffic.badgeHits / Math.max(1, out.badge.count), 3),
      runnerEvents: { accepted: accepted.size, lost: lost.length, duplicated: duplicated.length, refusedThenRetried: refused },
    }),
  );
  if (serverErrors > 0 || lost.length > 0 || duplicated.length > 0) process.exitCode = 1;
} finally {
  await recorder.close();
  await stack.stop();
}
