/**
 * The SDK side of bench:context-delta, in its own process so its peak RSS is the SDK's own
 * (the parent starts the stack and generates the tree; as bench:sdk-hash runs Kiln in a
 * child). Plain JavaScript importing the SDK's build (sdk/dist), as an application runs it:
 * a TypeScript file would load Node's type stripper into the measured process (13 MiB).
 * It builds the tree, changes one file, builds again, then times unchanged re-checks.
 * Prints one JSON line (`ClientResult`, bench/context-delta-types.ts) for the parent.
 *
 * Run by bench/context-delta.ts as `node bench/context-delta-client.mjs '<ClientArgs JSON>'`,
 * with KILN_CACHE_DIR set to the run's own cache.
 */
// @ts-check
import { randomBytes } from "node:crypto";
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { KilnClient } from "../sdk/dist/client.js";
import { resolveContext } from "../sdk/dist/context.js";
import { Image } from "../sdk/dist/index.js";

/** @typedef {import("./context-delta-types.ts").ClientArgs} ClientArgs */
/** @typedef {import("./context-delta-types.ts").ClientResult} ClientResult */
/** @typedef {import("./context-delta-types.ts").BuildFigures} BuildFigures */
/** @typedef {{ requests: number; bytes: number; submittedAt: number | null }} Counter */

/** @type {ClientArgs} */
const args = JSON.parse(process.argv[2] ?? "{}");
const memory = sampleMemory();
memory.phase("start");
/** @type {Counter} */
const counter = { requests: 0, bytes: 0, submittedAt: null };
const client = new KilnClient({ serverUrl: args.url, token: args.token, fetch: countingFetch(counter), maxRetries: 0 });
// A new Image per build: build() is idempotent per Image object.
const image = () => Image.fromRegistry("busybox").addLocalDir(args.tree, "/ctx", { copy: true }).runCommands("true");

const first = await buildToSubmission(client, image, counter);
memory.phase("firstBuild");
writeFileSync(pickFile(args.tree), randomBytes(args.changedBytes));
const second = await buildToSubmission(client, image, counter);
memory.phase("secondBuild");

// Unchanged re-checks, timed; the full hashes they are compared with run in their own
// processes afterwards (bench:sdk-hash's child), so this process's peak RSS is the SDK's.
const sources = [{ kind: "dir", localPath: args.tree, archivePath: "ctx", ignore: [] }];
/** @type {number[]} */
const recheckRuns = [];
/** @type {{ sizeBytes: number; digest: string } | null} */
let manifest = null;
for (let run = 0; run < Math.max(1, args.recheckRuns); run++) {
  const r0 = performance.now();
  const resolved = await resolveContext(sources);
  if (!resolved) throw new Error("the tree resolved to no context");
  recheckRuns.push((performance.now() - r0) / 1000);
  if (manifest !== null && resolved.digest !== manifest.digest) throw new Error("an unchanged re-check gave another manifest");
  manifest = { sizeBytes: resolved.sizeBytes, digest: resolved.digest };
  memory.phase("recheck");
}
memory.stop();
if (!manifest) throw new Error("no re-check ran");
/** @type {ClientResult} */
const result = {
  first,
  second,
  recheckRuns,
  manifestBytes: manifest.sizeBytes,
  peakRssMiB: process.resourceUsage().maxRSS / 1024,
  rssPhasesMiB: memory.phases,
  memoryPeaksMiB: memory.peaks,
};
console.log(JSON.stringify(result));

/**
 * `image.build()` up to its accepted submission, timed and counted.
 * @param {KilnClient} client
 * @param {() => Image} image
 * @param {Counter} counter
 * @returns {Promise<BuildFigures>}
 */
async function buildToSubmission(client, image, counter) {
  const before = { ...counter };
  const t0 = performance.now();
  await image().build({ client, logs: false });
  if (counter.submittedAt === null) throw new Error("the build was never accepted");
  const seconds = (counter.submittedAt - t0) / 1000;
  counter.submittedAt = null;
  return { seconds, bytes: counter.bytes - before.bytes, requests: counter.requests - before.requests };
}

/**
 * A fetch that counts requests and the request body bytes it sends: a streamed body by its
 * Content-Length, which fetch holds it to (a body of another length fails the request), so the
 * count adds nothing to the SDK process's memory. No runner is attached, so the accepted
 * submission's answer is reported to the SDK as a finished build: the benchmark ends at the
 * submission, and build() returns at once.
 * @param {Counter} counter
 * @returns {typeof fetch}
 */
function countingFetch(counter) {
  /** @type {(input: Request | string | URL, init?: RequestInit) => Promise<Response>} */
  const counting = async (input, init) => {
    counter.requests++;
    const body = init?.body;
    if (body instanceof Uint8Array) counter.bytes += body.byteLength;
    else if (body instanceof Blob) counter.bytes += body.size;
    else if (typeof body === "string") counter.bytes += Buffer.byteLength(body);
    else if (body instanceof ReadableStream) {
      const length = new Headers(init?.headers).get("content-length");
      if (length === null) throw new Error("a streamed upload without a Content-Length");
      counter.bytes += Number(length);
    }
    const response = await fetch(input, init);
    const url = new URL(String(input instanceof Request ? input.url : input));
    if (init?.method === "POST" && url.pathname === "/v1/images" && response.ok) {
      counter.submittedAt = performance.now();
      /** @type {{ layers?: Record<string, unknown>[] } & Record<string, unknown>} */
      const view = await response.json();
      // A complete answer (every layer with a registry result), so build() reads nothing back.
      const layers = (view.layers ?? []).map((layer) => ({
        ...layer,
        reference: layer.reference ?? "bench.invalid/no-runner",
        digest: layer.digest ?? `sha256:${"0".repeat(64)}`,
      }));
      return Response.json({ ...view, layers, status: "succeeded" }, { status: response.status });
    }
    return response;
  };
  return /** @type {typeof fetch} */ (counting);
}

/**
 * The process's peak RSS as each phase ends (the kernel's high-water mark, so a phase's
 * figure is the peak so far), and the peaks of V8's heap and of memory outside it, sampled
 * every 20 ms: where the memory went, not only how much.
 */
function sampleMemory() {
  /** @param {number} bytes */
  const mib = (bytes) => bytes / 2 ** 20;
  const peaks = { heapUsed: 0, external: 0, arrayBuffers: 0, rss: 0 };
  /** @type {Record<string, number>} */
  const phases = {};
  const sample = () => {
    const m = process.memoryUsage();
    peaks.heapUsed = Math.max(peaks.heapUsed, mib(m.heapUsed));
    peaks.external = Math.max(peaks.external, mib(m.external));
    peaks.arrayBuffers = Math.max(peaks.arrayBuffers, mib(m.arrayBuffers));
    peaks.rss = Math.max(peaks.rss, mib(m.rss));
  };
  const timer = setInterval(sample, 20);
  return {
    phases,
    peaks,
    /** @param {string} name */
    phase(name) {
      sample();
      phases[name] = process.resourceUsage().maxRSS / 1024;
    },
    stop: () => clearInterval(timer),
  };
}

/**
 * One file of the generated tree of at least a few bytes, to change.
 * @param {string} dir
 * @returns {string}
 */
function pickFile(dir) {
  const sub = path.join(dir, "d07", "s3");
  const name = readdirSync(sub).find((n) => n.endsWith(".bin"));
  if (!name) throw new Error(`no file under ${sub}`);
  return path.join(sub, name);
}
