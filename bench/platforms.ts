/**
 * Benchmark of a cold two-platform build (decision 0023): `image.build({ platforms:
 * ["linux/amd64", "linux/arm64"] })` through the orchestrator (wrangler dev) with two runner
 * processes that both build amd64 natively and arm64 under QEMU, so the per-platform jobs run
 * in parallel; against `buildah bud --platform linux/amd64,linux/arm64 --manifest X` plus
 * `buildah manifest push --all` of the same Dockerfile to the same registry, same storage driver
 * (vfs) and isolation (chroot). FROM a two-platform busybox base index. Target: kiln <= 1.2 x.
 *
 * Run with `npm run bench:platforms` (root; buildah, skopeo, busybox-static, qemu-user-static
 * with binfmt handlers: scripts/install-system-deps.sh). Env: PLATFORMS_BENCH_RUNS (default 3; the ratio is the median's).
 * One warm-up of each (base pulled into both storages) is not measured. Ends with one JSON line.
 */
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { testStorage } from "../runner/test/helpers/base-images.ts";
import { Image } from "../sdk/src/index.ts";
import { newWorkspace, requireE2eTools, stackInfo, startLocalRunner } from "../test/node/e2e-stack.ts";
import { pushMultiArchBusybox } from "../test/node/multi-arch-base.ts";
import { startStack } from "../test/node/registry-harness.ts";
import { mustRunBuildah } from "./buildah.ts";
import { median, round } from "./stats.ts";

const TARGET = 1.2;
const PLATFORMS = ["linux/amd64", "linux/arm64"];
// Work a RUN step does on each platform (interpreted by QEMU on arm64), plus files it writes.
const STEP = "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; mkdir -p /out; for f in 1 2 3 4 5 6 7 8; do uname -a > /out/$f; done";

if (process.getuid?.() !== 0) throw new Error("bench:platforms builds with buildah (chroot isolation, vfs) and must run as root");
requireE2eTools("buildah", "busybox", "skopeo", "qemu-aarch64-static");
const runs = Number(process.env.PLATFORMS_BENCH_RUNS ?? 3);
const log = (line: string) => process.stderr.write(`${line}\n`);

log("starting the stack (wrangler dev, two runners, two-platform base image)...");
const stack = await startStack();
const info = stackInfo(stack);
const tenant = await newWorkspace(info, "bench-platforms");
const both = { native: ["linux/amd64"], emulated: ["linux/arm64"] };
const runners = await Promise.all([
  startLocalRunner(info, tenant, { name: "bench-a", logLevel: "warn", platforms: both }),
  startLocalRunner(info, tenant, { name: "bench-b", logLevel: "warn", platforms: both }),
]);
const storage = await testStorage();
const work = await mkdtemp(path.join(os.tmpdir(), "kiln-bench-platforms-"));
const global = ["buildah", "--root", storage.root, "--runroot", storage.runRoot, "--storage-driver", "vfs"];
const creds = `bench:${tenant.token}`;

try {
  const base = await pushMultiArchBusybox(info, tenant, "busybox-multi:1");

  const viaKiln = async (): Promise<number> => {
    const nonce = randomUUID();
    const started = performance.now();
    await Image.fromRegistry(base)
      .runCommands(`echo ${nonce} > /nonce; ${STEP}`)
      .build({ client: tenant.client, logs: false, platforms: PLATFORMS });
    return (performance.now() - started) / 1000;
  };

  const direct = async (): Promise<number> => {
    const nonce = randomUUID();
    const dir = path.join(work, nonce);
    await mkdir(dir);
    await writeFile(path.join(dir, "Dockerfile"), [`FROM ${base}`, `RUN echo ${nonce} > /nonce; ${STEP}`, ""].join("\n"));
    const list = `kiln-bench-${nonce}`;
    const target = `${info.host}/${tenant.workspace}/direct:${nonce}`;
    const started = performance.now();
    await mustRunBuildah([
      ...global,
      "bud",
      "--quiet",
      "--isolation",
      "chroot",
      "--platform",
      PLATFORMS.join(","),
      "--manifest",
      list,
      "--tls-verify=false",
      "--creds",
      creds,
      "--pull=missing",
      "-f",
      path.join(dir, "Dockerfile"),
      dir,
    ]);
    await mustRunBuildah([
      ...global,
      "manifest",
      "push",
      "--all",
      "--quiet",
      "--tls-verify=false",
      "--creds",
      creds,
      list,
      `docker://${target}`,
    ]);
    const seconds = (performance.now() - started) / 1000;
    await mustRunBuildah([...global, "manifest", "rm", list]);
    return seconds;
  };

  await viaKiln();
  await direct();
  const kiln: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < runs; i++) {
    kiln.push(await viaKiln());
    baseline.push(await direct());
    log(
      `cold run ${i + 1}/${runs}: kiln ${kiln.at(-1)!.toFixed(2)} s, buildah bud --platform + manifest push --all ${baseline.at(-1)!.toFixed(2)} s`,
    );
  }
  const k = median(kiln);
  const b = median(baseline);
  log(
    `cold two-platform build: kiln ${k.toFixed(2)} s vs buildah ${b.toFixed(2)} s = ${(k / b).toFixed(2)}x (target <= ${TARGET}x): ${k <= TARGET * b ? "met" : "MISSED"}`,
  );
  console.log(
    JSON.stringify({
      name: "platforms",
      kiln: round(k),
      baseline: round(b),
      ratio: round(k / b),
      target: TARGET,
      met: k <= TARGET * b,
      runs,
      unit: "s",
    }),
  );
} finally {
  await Promise.all(runners.map((r) => r.stop()));
  await storage.dispose();
  await stack.stop();
  await rm(work, { recursive: true, force: true });
}
