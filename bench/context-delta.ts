/**
 * Benchmark: move only the bytes that changed (issue 16, decision 0022). Against the real
 * stack (`wrangler dev`, local D1/R2), a generated 10,000-file, 1 GiB context is built once
 * through the SDK's submission path (describe -> submit -> upload what the 422 lists ->
 * submit), then one 100 KB file is changed and it is built again. Reports:
 * - bytes uploaded by the second build against the changed file plus the new manifest (target <= 1.1x),
 * - time from build() to the accepted submission, second against first (target <= 0.1x),
 * - an unchanged re-check (walk + stat against the hash index) against a full hash of the same
 *   tree (walk + tar + sha256: bench:sdk-hash's Kiln side, in its child process), same run, the
 *   medians of CONTEXT_DELTA_RECHECK_RUNS runs of each (target <= 0.05x),
 * - peak RSS of the process running the SDK (target < 200 MiB), with the peak after each
 *   phase and the sampled peaks of V8's heap and of the memory outside it.
 * The SDK runs in its own process (bench/context-delta-client.mjs, plain JavaScript importing
 * sdk/dist as an application does), so neither the tree generator nor this harness counts in its RSS.
 * No runner is attached: the build is measured up to the accepted submission, whose answer
 * the counting fetch reports to the SDK as final so build() returns there.
 *
 * Env: CONTEXT_DELTA_FILES (10000), CONTEXT_DELTA_BYTES (1 GiB), CONTEXT_DELTA_CHANGED_BYTES (100 KB),
 * CONTEXT_DELTA_RECHECK_RUNS (5).
 * Ends with one JSON line.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { newTenant, startStack } from "../test/node/registry-harness.ts";
import type { ClientArgs, ClientResult } from "./context-delta-types.ts";
import { median, round } from "./stats.ts";
import { generateTree } from "./tree.ts";

const BYTES_TARGET = 1.1;
const SUBMIT_TARGET = 0.1;
const RECHECK_TARGET = 0.05;
const RSS_TARGET_MIB = 200;

const fileCount = Number(process.env.CONTEXT_DELTA_FILES ?? 10_000);
const totalBytes = Number(process.env.CONTEXT_DELTA_BYTES ?? 2 ** 30);
const changedBytes = Number(process.env.CONTEXT_DELTA_CHANGED_BYTES ?? 100 * 1000);
const recheckRuns = Number(process.env.CONTEXT_DELTA_RECHECK_RUNS ?? 5);

if (process.argv[2] === "--generate") {
  // In its own process, so the generator's buffers count nowhere.
  generateTree(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
  process.exit(0);
}

const tmp = mkdtempSync(path.join(os.tmpdir(), "kiln-bench-delta-"));
const tree = path.join(tmp, "tree");
const stack = await startStack();
try {
  const t0 = performance.now();
  const generated = spawnSync(process.execPath, [import.meta.filename, "--generate", tree, String(fileCount), String(totalBytes)], {
    stdio: "inherit",
  });
  if (generated.status !== 0) throw new Error("generating the tree failed");
  console.log(`generated ${fileCount} files, ${totalBytes} bytes in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  const { token } = await newTenant(stack, `delta-${Date.now()}`);
  const clientArgs: ClientArgs = { url: stack.url, token, tree, changedBytes, recheckRuns };
  const run = spawnSync(process.execPath, [path.join(import.meta.dirname, "context-delta-client.mjs"), JSON.stringify(clientArgs)], {
    // The SDK's hash index lives here for the run, never in the user's cache.
    env: { ...process.env, KILN_CACHE_DIR: path.join(tmp, "cache") },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 16 << 20,
  });
  if (run.status !== 0) throw new Error(`the SDK client failed (${run.status})`);
  const r = JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "") as ClientResult;
  // The full hash of the same tree: bench:sdk-hash's Kiln side (walk + tar + sha256, timed
  // inside its own child process), as many times as the re-check ran.
  const fullHashRuns: number[] = [];
  for (let i = 0; i < r.recheckRuns.length; i++) {
    const hash = spawnSync(process.execPath, [path.join(import.meta.dirname, "sdk-hash.ts"), "--child", tree], {
      encoding: "utf8",
      maxBuffer: 16 << 20,
    });
    if (hash.status !== 0) throw new Error(`the full hash failed (${hash.status}): ${hash.stderr}`);
    fullHashRuns.push((JSON.parse(hash.stdout.trim().split("\n").at(-1) ?? "") as { seconds: number }).seconds);
  }
  const fullHashSeconds = median(fullHashRuns);
  const { first, second } = r;
  const recheckSeconds = median(r.recheckRuns);
  const mib = (figures: Record<string, number>) => Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, round(v)]));
  console.log(`first build: ${first.seconds.toFixed(2)}s to submission, ${first.bytes} bytes in ${first.requests} requests`);
  console.log(
    `one ${changedBytes}-byte file changed: ${second.seconds.toFixed(3)}s to submission, ${second.bytes} bytes in ${second.requests} requests`,
  );
  console.log(
    `unchanged re-check ${recheckSeconds.toFixed(3)}s (runs ${r.recheckRuns.map((t) => t.toFixed(3)).join(", ")}), ` +
      `full hash ${fullHashSeconds.toFixed(3)}s (runs ${fullHashRuns.map((t) => t.toFixed(3)).join(", ")})`,
  );
  console.log(
    `SDK peak RSS after each phase (MiB): ${JSON.stringify(mib(r.rssPhasesMiB))}; sampled peaks (MiB): ${JSON.stringify(mib(r.memoryPeaksMiB))}`,
  );

  const floor = changedBytes + r.manifestBytes;
  console.log(
    JSON.stringify({
      name: "context-delta",
      kiln: second.bytes,
      baseline: floor,
      ratio: round(second.bytes / floor),
      target: BYTES_TARGET,
      firstUploadBytes: first.bytes,
      submitSeconds: round(second.seconds),
      firstSubmitSeconds: round(first.seconds),
      submitRatio: round(second.seconds / first.seconds),
      submitTarget: SUBMIT_TARGET,
      recheckSeconds: round(recheckSeconds),
      fullHashSeconds: round(fullHashSeconds),
      recheckRatio: round(recheckSeconds / fullHashSeconds),
      recheckTarget: RECHECK_TARGET,
      recheckRuns: r.recheckRuns.map(round),
      fullHashRuns: fullHashRuns.map(round),
      secondRequests: second.requests,
      peakRssMiB: round(r.peakRssMiB),
      rssTarget: RSS_TARGET_MIB,
      files: fileCount,
      bytes: totalBytes,
      manifestBytes: r.manifestBytes,
      targetsMet: {
        bytes: second.bytes / floor <= BYTES_TARGET,
        submit: second.seconds / first.seconds <= SUBMIT_TARGET,
        recheck: recheckSeconds / fullHashSeconds <= RECHECK_TARGET,
        rss: r.peakRssMiB < RSS_TARGET_MIB,
      },
      rssPhasesMiB: mib(r.rssPhasesMiB),
      memoryPeaksMiB: mib(r.memoryPeaksMiB),
    }),
  );
} finally {
  await stack.stop();
  rmSync(tmp, { recursive: true, force: true });
}
