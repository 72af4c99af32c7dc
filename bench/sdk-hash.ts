/**
 * Benchmark: Kiln's context hashing (walk + deterministic tar + per-file sha256) against
 * `tar -cf - -C DIR . | sha256sum` on a generated tree of 10,000 files totalling 1 GiB.
 *
 * Run with `npx node bench/sdk-hash.ts`. Each Kiln run happens in a child process (this
 * file with `--child DIR`) so its peak RSS is its own. The Kiln time is measured inside
 * the child around walk (`walkContext`) + hash, excluding Node's startup; the baseline time is the wall
 * time of `bash -c` (its startup is a few milliseconds). Ends with one JSON line.
 *
 * Env: SDK_HASH_RUNS (default 5), SDK_HASH_FILES (10000), SDK_HASH_BYTES (1 GiB),
 * SDK_HASH_DIR (reuse an existing tree instead of generating one; not deleted).
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type ContextEntry, hashContext } from "../sdk/src/context-tar.ts";
import { walkContext } from "../sdk/src/context-walk.ts";
import { median, round } from "./stats.ts";
import { generateTree } from "./tree.ts";

const TARGET = 1.2;
const RSS_TARGET_MIB = 200;

if (process.argv[2] === "--child") {
  await child(process.argv[3] ?? "");
} else {
  await main();
}

async function main(): Promise<void> {
  const runs = Number(process.env.SDK_HASH_RUNS ?? 5);
  const fileCount = Number(process.env.SDK_HASH_FILES ?? 10_000);
  const totalBytes = Number(process.env.SDK_HASH_BYTES ?? 2 ** 30);
  const reuse = process.env.SDK_HASH_DIR;
  const tmp = reuse ? undefined : mkdtempSync(path.join(os.tmpdir(), "kiln-bench-hash-"));
  const dir = reuse ?? path.join(tmp as string, "tree");
  const cleanup = (): void => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  };
  process.once("SIGINT", () => {
    cleanup();
    process.exit(130);
  });
  try {
    if (!reuse) {
      const t0 = performance.now();
      generateTree(dir, fileCount, totalBytes);
      console.log(`generated ${fileCount} files, ${totalBytes} bytes in ${secs(performance.now() - t0)}s under ${dir}`);
    }
    // Warm the page cache (and check both sides work) before timing anything.
    baseline(dir);
    const warm = kiln(dir);
    console.log(`warm-up: kiln digest ${warm.digest}, ${warm.files} files, tar ${warm.tarBytes} bytes`);

    const kilnTimes: number[] = [];
    const kilnWall: number[] = [];
    const baseTimes: number[] = [];
    let peakRssMiB = 0;
    for (let i = 0; i < runs; i++) {
      const k = kiln(dir);
      if (k.digest !== warm.digest) throw new Error(`non-deterministic digest: ${k.digest} vs ${warm.digest}`);
      kilnTimes.push(k.seconds);
      kilnWall.push(k.wallSeconds);
      peakRssMiB = Math.max(peakRssMiB, k.maxRssMiB);
      const b = baseline(dir);
      baseTimes.push(b);
      console.log(
        `run ${i + 1}/${runs}: kiln ${k.seconds.toFixed(3)}s (walk ${k.walkSeconds.toFixed(3)}s, ` +
          `process ${k.wallSeconds.toFixed(3)}s, ` +
          `rss ${k.maxRssMiB.toFixed(1)} MiB)  baseline ${b.toFixed(3)}s`,
      );
    }
    const kilnMedian = median(kilnTimes);
    const baseMedian = median(baseTimes);
    const ratio = kilnMedian / baseMedian;
    console.log(
      `median: kiln ${kilnMedian.toFixed(3)}s (process incl. node startup ${median(kilnWall).toFixed(3)}s), ` +
        `baseline ${baseMedian.toFixed(3)}s, ratio ${ratio.toFixed(3)} (target <= ${TARGET}), ` +
        `peak rss ${peakRssMiB.toFixed(1)} MiB (target < ${RSS_TARGET_MIB})`,
    );
    console.log(
      JSON.stringify({
        name: "sdk-hash",
        kiln: round(kilnMedian),
        baseline: round(baseMedian),
        ratio: round(ratio),
        target: TARGET,
        peakRssMiB: round(peakRssMiB),
        rssTarget: RSS_TARGET_MIB,
        files: warm.files,
        bytes: warm.bytes,
      }),
    );
  } finally {
    cleanup();
  }
}

type KilnRun = {
  seconds: number;
  walkSeconds: number;
  wallSeconds: number;
  maxRssMiB: number;
  digest: string;
  files: number;
  bytes: number;
  tarBytes: number;
};

function kiln(dir: string): KilnRun {
  const t0 = performance.now();
  const res = spawnSync(process.execPath, [import.meta.filename, "--child", dir], {
    encoding: "utf8",
    maxBuffer: 16 << 20,
  });
  const wallSeconds = (performance.now() - t0) / 1000;
  if (res.status !== 0) throw new Error(`kiln child failed (${res.status}): ${res.stderr}`);
  const last = res.stdout.trim().split("\n").at(-1) ?? "";
  return { ...(JSON.parse(last) as Omit<KilnRun, "wallSeconds">), wallSeconds };
}

function baseline(dir: string): number {
  const t0 = performance.now();
  const res = spawnSync("bash", ["-c", 'set -o pipefail; tar -cf - -C "$1" . | sha256sum', "bash", dir], {
    encoding: "utf8",
  });
  const seconds = (performance.now() - t0) / 1000;
  if (res.status !== 0) throw new Error(`baseline failed (${res.status}): ${res.stderr}`);
  return seconds;
}

/** The measured side: walk + hash, timed in-process; prints one JSON line for the parent. */
async function child(dir: string): Promise<void> {
  const t0 = performance.now();
  // Collected first, then hashed, as `sdk/src/context.ts` does for a real build.
  const entries: ContextEntry[] = [];
  for await (const entry of walkContext(dir)) entries.push(entry);
  const walkSeconds = (performance.now() - t0) / 1000;
  const result = await hashContext(entries);
  const seconds = (performance.now() - t0) / 1000;
  const bytes = entries.reduce((n, e) => n + (e.type === "file" ? e.size : 0), 0);
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  console.log(
    JSON.stringify({
      seconds,
      walkSeconds,
      maxRssMiB,
      digest: result.digest,
      files: result.files.length,
      bytes,
      tarBytes: result.sizeBytes,
    }),
  );
}

function secs(ms: number): string {
  return (ms / 1000).toFixed(1);
}
