/**
 * Benchmark: move only the bytes that changed (issue 16, decision 0022). Against the real
 * stack (`wrangler dev`, local D1/R2), a generated 10,000-file, 1 GiB context is built once
 * through the SDK's submission path (describe -> submit -> upload what the 422 lists ->
 * submit), then one 100 KB file is changed and it is built again. Reports:
 * - bytes uploaded by the second build against the changed file plus the new manifest (target <= 1.1x),
 * - time from build() to the accepted submission, second against first (target <= 0.1x),
 * - an unchanged re-check (walk + stat against the hash index) against a full hash of the same
 *   tree (walk + tar + sha256, bench:sdk-hash's Kiln side), same run (target <= 0.05x),
 * - peak RSS of this process (target < 200 MiB; the tree is generated and wrangler runs in
 *   other processes).
 * No runner is attached: the build is measured up to the accepted submission, whose answer
 * the counting fetch reports to the SDK as final so build() returns there.
 *
 * Env: CONTEXT_DELTA_FILES (10000), CONTEXT_DELTA_BYTES (1 GiB), CONTEXT_DELTA_CHANGED_BYTES (100 KB).
 * Ends with one JSON line.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { KilnClient } from "../sdk/src/client.ts";
import { resolveContext } from "../sdk/src/context.ts";
import { type ContextEntry, hashContext } from "../sdk/src/context-tar.ts";
import { walkContext } from "../sdk/src/context-walk.ts";
import { Image } from "../sdk/src/index.ts";
import { newTenant, startStack } from "../test/node/registry-harness.ts";
import { round } from "./stats.ts";
import { generateTree } from "./tree.ts";

const BYTES_TARGET = 1.1;
const SUBMIT_TARGET = 0.1;
const RECHECK_TARGET = 0.05;
const RSS_TARGET_MIB = 200;

const fileCount = Number(process.env.CONTEXT_DELTA_FILES ?? 10_000);
const totalBytes = Number(process.env.CONTEXT_DELTA_BYTES ?? 2 ** 30);
const changedBytes = Number(process.env.CONTEXT_DELTA_CHANGED_BYTES ?? 100 * 1000);

if (process.argv[2] === "--generate") {
  // In its own process, so the generator's buffers do not count in the measured peak RSS.
  generateTree(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
  process.exit(0);
}

const tmp = mkdtempSync(path.join(os.tmpdir(), "kiln-bench-delta-"));
const tree = path.join(tmp, "tree");
// The SDK's hash index lives here for the run, never in the user's cache.
process.env.KILN_CACHE_DIR = path.join(tmp, "cache");
const stack = await startStack();
try {
  const t0 = performance.now();
  const generated = spawnSync(process.execPath, [import.meta.filename, "--generate", tree, String(fileCount), String(totalBytes)], {
    stdio: "inherit",
  });
  if (generated.status !== 0) throw new Error("generating the tree failed");
  console.log(`generated ${fileCount} files, ${totalBytes} bytes in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  const { token } = await newTenant(stack, `delta-${Date.now()}`);
  const counter: Counter = { requests: 0, bytes: 0, submittedAt: null };
  const client = new KilnClient({ serverUrl: stack.url, token, fetch: countingFetch(counter), maxRetries: 0 });
  // A new Image per build: build() is idempotent per Image object.
  const image = () => Image.fromRegistry("busybox").addLocalDir(tree, "/ctx", { copy: true }).runCommands("true");

  const first = await buildToSubmission(client, image, counter);
  console.log(`first build: ${first.seconds.toFixed(2)}s to submission, ${first.bytes} bytes in ${first.requests} requests`);

  const changed = pickFile(tree);
  writeFileSync(changed, randomBytes(changedBytes));
  const second = await buildToSubmission(client, image, counter);
  console.log(
    `one ${changedBytes}-byte file changed: ${second.seconds.toFixed(3)}s to submission, ${second.bytes} bytes in ${second.requests} requests`,
  );

  const sources = [{ kind: "dir" as const, localPath: tree, archivePath: "ctx", ignore: [] }];
  const r0 = performance.now();
  const manifest = (await resolveContext(sources))!;
  const recheckSeconds = (performance.now() - r0) / 1000;
  const h0 = performance.now();
  const entries: ContextEntry[] = [];
  for await (const entry of walkContext(tree)) entries.push(entry);
  await hashContext(entries);
  const fullHashSeconds = (performance.now() - h0) / 1000;
  console.log(`unchanged re-check ${recheckSeconds.toFixed(3)}s, full hash ${fullHashSeconds.toFixed(3)}s`);

  const floor = changedBytes + manifest.sizeBytes;
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
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
      secondRequests: second.requests,
      peakRssMiB: round(peakRssMiB),
      rssTarget: RSS_TARGET_MIB,
      files: fileCount,
      bytes: totalBytes,
      manifestBytes: manifest.sizeBytes,
    }),
  );
} finally {
  await stack.stop();
  rmSync(tmp, { recursive: true, force: true });
}

/** `image.build()` up to its accepted submission, timed and counted. */
async function buildToSubmission(client: KilnClient, image: () => Image, counter: Counter) {
  const before = { ...counter };
  const t0 = performance.now();
  await image().build({ client, logs: false });
  if (counter.submittedAt === null) throw new Error("the build was never accepted");
  const seconds = (counter.submittedAt - t0) / 1000;
  counter.submittedAt = null;
  return { seconds, bytes: counter.bytes - before.bytes, requests: counter.requests - before.requests };
}

type Counter = { requests: number; bytes: number; submittedAt: number | null };

/**
 * A fetch that counts requests and the request body bytes it sends. No runner is attached, so
 * the accepted submission's answer is reported to the SDK as a finished build: the benchmark
 * ends at the submission, and build() returns at once.
 */
function countingFetch(counter: Counter): typeof fetch {
  return (async (input: Request | string | URL, init?: RequestInit) => {
    counter.requests++;
    let body = init?.body;
    if (body instanceof Uint8Array) counter.bytes += body.byteLength;
    else if (typeof body === "string") counter.bytes += Buffer.byteLength(body);
    else if (body instanceof ReadableStream) {
      body = body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            counter.bytes += chunk.byteLength;
            controller.enqueue(chunk);
          },
        }),
      );
    }
    const response = await fetch(input, { ...init, body } as RequestInit);
    const url = new URL(String(input instanceof Request ? input.url : input));
    if (init?.method === "POST" && url.pathname === "/v1/images" && response.ok) {
      counter.submittedAt = performance.now();
      const view = (await response.json()) as { layers?: Record<string, unknown>[] } & Record<string, unknown>;
      // A complete answer (every layer with a registry result), so build() reads nothing back.
      const layers = (view.layers ?? []).map((layer) => ({
        ...layer,
        reference: layer.reference ?? "bench.invalid/no-runner",
        digest: layer.digest ?? `sha256:${"0".repeat(64)}`,
      }));
      return Response.json({ ...view, layers, status: "succeeded" }, { status: response.status });
    }
    return response;
  }) as typeof fetch;
}

/** One file of the generated tree of at least a few bytes, to change. */
function pickFile(dir: string): string {
  const sub = path.join(dir, "d07", "s3");
  const name = readdirSync(sub).find((n) => n.endsWith(".bin"));
  if (!name) throw new Error(`no file under ${sub}`);
  return path.join(sub, name);
}
