/**
 * Benchmark: a 3-layer image built through the reference runner (signed dispatch received
 * to `succeeded` reported, which includes pushing every layer image and checking its
 * manifest) against building the equivalent Dockerfile with `buildah bud --layers` and
 * pushing the result, both on the same machine, storage (vfs), isolation (chroot) and
 * local registry, alternating, medians over the runs. Target: kiln <= 1.2 x baseline + 1 s.
 *
 * Run with `npm run bench:runner` (root, buildah, skopeo, docker-registry and busybox-static
 * installed). Env: RUNNER_BENCH_RUNS (default 5). Ends with one JSON line.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../runner/src/logger.ts";
import { startRunner } from "../runner/src/runner.ts";
import { busyboxRootfs, pushRootfsImage, testStorage } from "../runner/test/helpers/base-images.ts";
import { FakeOrchestrator } from "../runner/test/helpers/fake-orchestrator.ts";
import { dispatch, layer, makeJob, testSecret } from "../runner/test/helpers/jobs.ts";
import { startRegistry } from "../runner/test/helpers/registry.ts";
import { requireRoot, requireTools } from "../runner/test/helpers/tools.ts";
import { mustRunBuildah } from "./buildah.ts";
import { median, round } from "./stats.ts";

const TARGET = 1.2;
const SLACK_SECONDS = 1;

requireRoot();
requireTools("buildah", "skopeo", "docker-registry", "busybox");
const runs = Number(process.env.RUNNER_BENCH_RUNS ?? 5);
const registry = await startRegistry();
const storage = await testStorage();
const work = await mkdtemp(path.join(os.tmpdir(), "kiln-bench-runner-"));
const secret = testSecret();
const orchestrator = await FakeOrchestrator.start(secret);
const baseRef = `${registry.host}/base/busybox:1`;
const runner = await startRunner(
  {
    webhookSecrets: [secret],
    host: "127.0.0.1",
    port: 0,
    workDir: path.join(work, "jobs"),
    cacheDir: path.join(work, "cache"),
    storageRoot: storage.root,
    storageRunRoot: storage.runRoot,
  },
  { logger: silentLogger },
);
const global = ["buildah", "--root", storage.root, "--runroot", storage.runRoot, "--storage-driver", "vfs"];

try {
  await pushRootfsImage(await busyboxRootfs(), baseRef, storage);
  // The three layers; `nonce` defeats every cache so each run really builds.
  const steps = (nonce: string) => [
    [`RUN echo ${nonce} > /one && i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done`],
    ["ENV STAGE=two", "RUN echo two > /two"],
    ["WORKDIR /app", "RUN echo three > /app/three && ls -la / > /app/listing"],
  ];

  const viaRunner = async (): Promise<number> => {
    const nonce = randomUUID();
    const [a, b, c] = steps(nonce);
    const job = makeJob({
      orchestrator,
      registryHost: registry.host,
      layers: [
        layer(0, "one", [`FROM ${baseRef}`, ...a!], registry.host),
        layer(1, "two", ["FROM base", ...b!], registry.host),
        layer(2, "three", ["FROM base", ...c!], registry.host),
      ],
    });
    const started = performance.now();
    const response = await dispatch(runner.url, job, secret);
    if (response.status !== 202) throw new Error(`dispatch answered ${response.status}`);
    await orchestrator.waitFor(
      () => orchestrator.events.some((e) => e.jobId === job.jobId && (e.type === "succeeded" || e.type === "failed")),
      600_000,
    );
    const seconds = (performance.now() - started) / 1000;
    const final = orchestrator.events.find((e) => e.jobId === job.jobId && (e.type === "succeeded" || e.type === "failed"));
    if (final?.type !== "succeeded") throw new Error(`runner build failed: ${JSON.stringify(final)}`);
    return seconds;
  };

  const direct = async (): Promise<{ total: number; bud: number }> => {
    const nonce = randomUUID();
    const dir = path.join(work, `direct-${nonce}`);
    await rm(dir, { recursive: true, force: true });
    await import("node:fs/promises").then((fs) => fs.mkdir(dir, { recursive: true }));
    await writeFile(path.join(dir, "Dockerfile"), [`FROM ${baseRef}`, ...steps(nonce).flat(), ""].join("\n"));
    const tag = `${registry.host}/bench/direct:${nonce}`;
    const started = performance.now();
    await mustRunBuildah([
      ...global,
      "bud",
      "--quiet",
      "--isolation",
      "chroot",
      "--layers",
      "--tls-verify=false",
      "--pull=missing",
      "-t",
      tag,
      "-f",
      path.join(dir, "Dockerfile"),
      dir,
    ]);
    const bud = (performance.now() - started) / 1000;
    await mustRunBuildah([...global, "push", "--quiet", "--tls-verify=false", tag, `docker://${tag}`]);
    const total = (performance.now() - started) / 1000;
    await mustRunBuildah([...global, "rmi", "--force", tag]);
    await rm(dir, { recursive: true, force: true });
    return { total, bud };
  };

  // Warm-up (first pull into storage, page cache), not measured.
  await viaRunner();
  await direct();
  const kiln: number[] = [];
  const baseline: number[] = [];
  const budOnly: number[] = [];
  for (let i = 0; i < runs; i++) {
    kiln.push(await viaRunner());
    const d = await direct();
    baseline.push(d.total);
    budOnly.push(d.bud);
    console.log(
      `run ${i + 1}/${runs}: runner ${kiln[i]!.toFixed(2)} s, buildah bud+push ${d.total.toFixed(2)} s (bud ${d.bud.toFixed(2)} s)`,
    );
  }
  const k = median(kiln);
  const b = median(baseline);
  const limit = TARGET * b + SLACK_SECONDS;
  console.log(
    `median: runner ${k.toFixed(2)} s vs buildah ${b.toFixed(2)} s; target <= ${limit.toFixed(2)} s (${TARGET}x + ${SLACK_SECONDS} s): ${k <= limit ? "met" : "MISSED"}`,
  );
  console.log(
    JSON.stringify({
      name: "runner",
      kiln: round(k),
      baseline: round(b),
      ratio: round(k / b),
      target: TARGET,
      slackSeconds: SLACK_SECONDS,
      limit: round(limit),
      met: k <= limit,
      baselineBudOnly: round(median(budOnly)),
      runs,
      layers: 3,
      unit: "s",
    }),
  );
} finally {
  await runner.close();
  await orchestrator.close();
  await registry.stop();
  await storage.dispose();
  await rm(work, { recursive: true, force: true });
}
