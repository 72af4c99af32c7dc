// GPUs: nvidia-smi discovery (through a fake nvidia-smi), type mapping and matching as in
// Modal, exclusive allocation, the capabilities the runner advertises, and a job asking for
// a GPU this machine lacks refused with a clear infra failure before anything is built.
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuildBackend, BuildRequest } from "../src/backends/types.ts";
import { detectGpus, GpuPool, gpuMatches, gpusFromOverride, gpuTypeOf, parseNvidiaSmi } from "../src/gpu.ts";
import { silentLogger } from "../src/logger.ts";
import { type RunningRunner, startRunner } from "../src/runner.ts";
import { FakeOrchestrator } from "./helpers/fake-orchestrator.ts";
import { dispatch, layer, makeJob, testSecret } from "./helpers/jobs.ts";

const SMI_OUTPUT = "0, Tesla T4, GPU-11111111-2222-3333-4444-555555555555, 15360\n1, NVIDIA A100-SXM4-80GB, GPU-aaaa, 81920\n";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-gpu-"));
  await writeFile(path.join(dir, "nvidia-smi"), `#!/bin/sh\nprintf '%s' '${SMI_OUTPUT}'\n`);
  await chmod(path.join(dir, "nvidia-smi"), 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("GPU discovery", () => {
  it("reads nvidia-smi's CSV and maps product names to Kiln types", async () => {
    const devices = await detectGpus(path.join(dir, "nvidia-smi"));
    expect(devices).toEqual([
      { index: 0, name: "Tesla T4", uuid: "GPU-11111111-2222-3333-4444-555555555555", memoryMiB: 15360, type: "T4" },
      { index: 1, name: "NVIDIA A100-SXM4-80GB", uuid: "GPU-aaaa", memoryMiB: 81920, type: "A100-80GB" },
    ]);
    expect(await detectGpus(path.join(dir, "missing-nvidia-smi"))).toEqual([]);
    expect(parseNvidiaSmi("No devices were found\n")).toEqual([]);
  });

  it("knows the product names of every Kiln GPU type", () => {
    const names: [string, number, string][] = [
      ["NVIDIA L4", 23034, "L4"],
      ["NVIDIA A10G", 23028, "A10G"],
      ["NVIDIA A10", 23028, "A10"],
      ["NVIDIA A100-SXM4-40GB", 40960, "A100-40GB"],
      ["NVIDIA A100 80GB PCIe", 81920, "A100-80GB"],
      ["NVIDIA L40S", 46068, "L40S"],
      ["NVIDIA H100 80GB HBM3", 81559, "H100"],
      ["NVIDIA H200", 143771, "H200"],
      ["NVIDIA B200", 183359, "B200"],
    ];
    for (const [name, memory, type] of names) expect(gpuTypeOf(name, memory)).toBe(type);
    expect(gpuTypeOf("Quadro RTX 8000", 49152)).toBeNull();
  });

  it("matches requests like Modal: ANY, A100 of either size, H100 upgraded to H200 unless H100!", () => {
    expect(gpuMatches("ANY", "T4")).toBe(true);
    expect(gpuMatches("ANY", null)).toBe(true);
    expect(gpuMatches("A100", "A100-80GB")).toBe(true);
    expect(gpuMatches("A100-40GB", "A100-80GB")).toBe(false);
    expect(gpuMatches("H100", "H200")).toBe(true);
    expect(gpuMatches("H100!", "H200")).toBe(false);
    expect(gpuMatches("T4", "L4")).toBe(false);
  });

  it("hands out devices exclusively and wakes waiters on release", async () => {
    const pool = new GpuPool(gpusFromOverride("H100:2"));
    expect(pool.check({ type: "H100", count: 3 })).toMatch(/cannot provide 3x H100 \(it has 2x H100\)/);
    const a = await pool.acquire({ type: "H100", count: 2 });
    expect(a.devices.map((d) => d.index)).toEqual([0, 1]);
    let got: number[] | null = null;
    const waiting = pool.acquire({ type: "ANY", count: 1 }).then((b) => (got = b.devices.map((d) => d.index)));
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBeNull();
    a.release();
    await waiting;
    expect(got).toEqual([0]);
  });
});

describe("a runner with one T4 and one A100-80GB", () => {
  let runner: RunningRunner;
  let fake: FakeOrchestrator;
  let secret: string;
  const requests: BuildRequest[] = [];
  // Records what it would build and fails, so no build tool is needed here.
  const backend: BuildBackend = {
    name: "buildah",
    runFlags: () => [],
    build: (req) => (requests.push(req), { argv: ["sh", "-c", "exit 1"] }),
    push: () => null,
    digest: () => Promise.reject(new Error("unused")),
    remove: () => null,
    cleanup: () => null,
    stepExitCode: () => null,
    chains: true,
    chainProgress: () => null,
    tag: () => null,
    imageConfig: () => null,
    version: () => ({ argv: ["true"] }),
  };

  beforeAll(async () => {
    secret = testSecret();
    fake = await FakeOrchestrator.start(secret);
    const workDir = path.join(dir, "work");
    runner = await startRunner(
      {
        webhookSecrets: [secret],
        host: "127.0.0.1",
        port: 0,
        workDir,
        cacheDir: path.join(dir, "cache"),
        nvidiaSmi: path.join(dir, "nvidia-smi"),
      },
      { logger: silentLogger, backend },
    );
  });
  afterAll(async () => {
    await runner.close();
    await fake.close();
  });

  it("advertises its GPUs", async () => {
    const caps = (await (await fetch(`${runner.url}/v1/capabilities`)).json()) as { gpus: unknown };
    expect(caps.gpus).toEqual([
      { type: "T4", count: 1 },
      { type: "A100-80GB", count: 1 },
    ]);
  });

  it("refuses a job asking for a GPU it lacks with an infra failure, building nothing", async () => {
    const job = makeJob({
      orchestrator: fake,
      registryHost: "127.0.0.1:1",
      layers: [
        layer(0, "base", ["FROM busybox"], "127.0.0.1:1"),
        layer(1, "gpu", ["FROM base", "RUN nvidia-smi"], "127.0.0.1:1", { gpu: { type: "H100", count: 1 } }),
      ],
    });
    expect((await dispatch(runner.url, job, secret)).status).toBe(202);
    await fake.waitFor(() => fake.ofType("failed").some((e) => e.jobId === job.jobId), 10_000);
    const failed = fake.ofType("failed").find((e) => e.jobId === job.jobId)!;
    expect(failed).toMatchObject({ reason: "infra", layerKey: job.layers[1]!.key });
    expect(failed.message).toContain("cannot provide 1x H100 (it has 1x T4, 1x A100-80GB)");
    expect(requests).toEqual([]);
  });

  it("gives a layer the devices it asked for", async () => {
    const job = makeJob({
      orchestrator: fake,
      registryHost: "127.0.0.1:1",
      layers: [layer(0, "a100", ["FROM busybox", "RUN nvidia-smi"], "127.0.0.1:1", { gpu: { type: "A100", count: 1 } })],
    });
    expect((await dispatch(runner.url, job, secret)).status).toBe(202);
    await fake.waitFor(() => fake.ofType("failed").some((e) => e.jobId === job.jobId), 10_000);
    expect(requests.at(-1)!.gpus.map((g) => [g.index, g.type])).toEqual([[1, "A100-80GB"]]);
  });
});
