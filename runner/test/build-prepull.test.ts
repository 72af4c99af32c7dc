// Real buildah builds with the base pulled ahead (base-prepull.ts), on a runner that re-pulls
// bases every time (`pullBase: always`): the pull starts before the build context downloads
// and the build pulls nothing itself; a tag that moved is pulled fresh; a pull the registry
// refuses still fails the build as before (`build`, the registry's words, no password); and a
// runner with `pullBase: never` pulls nothing ahead.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Job, RunnerEvent, RunnerPhase } from "@kiln-build/protocol";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../src/logger.ts";
import { type RunningRunner, startRunner } from "../src/runner.ts";
import { pushRootfsImage } from "./helpers/base-images.ts";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { imageContents } from "./helpers/inspect.ts";
import { contextBundle, dispatch, layer, makeJob } from "./helpers/jobs.ts";
import { startRegistry, type TestRegistry } from "./helpers/registry.ts";

const PASSWORD = "prepull-registry-password-3c9e";
let privateRegistry: TestRegistry;
let files: string;
const harness = useBuildHarness({
  base: "busybox",
  async prepare() {
    privateRegistry = await startRegistry({ htpasswd: `kiln-base:${bcrypt.hashSync(PASSWORD, 4)}\n` });
    files = await mkdtemp(path.join(tmpdir(), "kiln-prepull-files-"));
    return { pullBase: "always", insecureRegistries: [privateRegistry.host], logFlushMs: 200 };
  },
  async cleanup() {
    await privateRegistry?.stop();
    if (files) await rm(files, { recursive: true, force: true });
  },
});

/** A one-file root filesystem saying `version`, pushed as `reference`. */
async function pushVersion(reference: string, version: string, creds?: string): Promise<void> {
  const rootfs = await mkdtemp(path.join(files, "rootfs-"));
  await writeFile(path.join(rootfs, "version"), `${version}\n`);
  await pushRootfsImage(rootfs, reference, harness.storage, creds);
}

/** A root layer on `base` whose build context (one file) is copied in. */
async function contextJob(base: string, name: string): Promise<Job> {
  const dir = await mkdtemp(path.join(files, "context-"));
  await writeFile(path.join(dir, "a.txt"), `${name}\n`);
  const bundle = await contextBundle([{ kind: "file", localPath: path.join(dir, "a.txt"), archivePath: "a.txt" }], path.join(dir, "index"));
  const context = harness.orchestrator.addContext(bundle);
  const host = harness.registry.host;
  return makeJob({
    orchestrator: harness.orchestrator,
    registryHost: host,
    layers: [layer(0, name, [`FROM ${base}`, "COPY a.txt /a.txt"], host, { context })],
  });
}

async function run(job: Job, runnerUrl = harness.runner.url) {
  harness.orchestrator.events.length = 0;
  expect((await dispatch(runnerUrl, job, harness.secret)).status).toBe(202);
  return harness.orchestrator.final();
}

/** The last report of each span of `layerKey`, in span order. */
function spansOf(events: readonly RunnerEvent[], layerKey: string): RunnerPhase[] {
  const latest = new Map<number, RunnerPhase>();
  for (const e of events) if (e.type === "phases") for (const p of e.phases) latest.set(p.span, p);
  return [...latest.values()].filter((p) => p.layerKey === layerKey).sort((a, b) => a.span - b.span);
}

const systemLog = () => harness.orchestrator.logText((e) => e.stream === "system");
const toolOutput = () => harness.orchestrator.logText((e) => e.stream !== "system");
// What buildah prints when the build itself pulls an image.
const BUILD_PULLS = /Trying to pull /;

describe("base images pulled ahead of the build", () => {
  it("pulls the base while the context downloads, the build pulling nothing itself; a moved tag is pulled fresh", async () => {
    const base = `${harness.registry.host}/prepull/fresh:1`;
    await pushVersion(base, "v1");
    const first = await contextJob(base, "first");
    expect(await run(first)).toMatchObject({ type: "succeeded" });

    const phases = spansOf(harness.orchestrator.events, first.layers[0]!.key);
    const prepull = phases.find((p) => p.kind === "pull" && p.step === null);
    const inputs = phases.find((p) => p.kind === "inputs");
    const fromStep = phases.find((p) => p.kind === "pull" && p.step !== null);
    expect(prepull).toMatchObject({ outcome: "ok" });
    expect(inputs).toMatchObject({ outcome: "ok" });
    // The pull began before the download (the inputs) began, and ended before the build's FROM step.
    expect(prepull!.startedAtMs).toBeLessThanOrEqual(inputs!.startedAtMs);
    expect(prepull!.endedAtMs!).toBeLessThanOrEqual(fromStep!.startedAtMs);
    const system = systemLog();
    const started = system.indexOf(`pulling ${base} while the layer's inputs are prepared`);
    expect(started).toBeGreaterThanOrEqual(0);
    expect(started).toBeLessThan(system.indexOf("build context sha256:"));
    expect(system).toMatch(new RegExp(`pulled ${base.replace(/[.:/]/g, "\\$&")} in \\d+\\.\\d s`));
    // `always` was met by the pull ahead: the build found the image and pulled nothing again.
    expect(toolOutput()).not.toMatch(BUILD_PULLS);
    const contents = (await imageContents(first.layers[0]!.target)).files;
    expect(contents.get("/version")?.data.toString()).toBe("v1\n");
    expect(contents.get("/a.txt")?.data.toString()).toBe("first\n");

    // The tag moves: under `always`, the next build is on the new image.
    await pushVersion(base, "v2");
    const second = await contextJob(base, "second");
    expect(await run(second)).toMatchObject({ type: "succeeded" });
    expect((await imageContents(second.layers[0]!.target)).files.get("/version")?.data.toString()).toBe("v2\n");
  }, 300_000);

  it("fails a pull the registry refuses as before: build, not retried, the registry's words, no password", async () => {
    const base = `${privateRegistry.host}/private/app:1`;
    await pushVersion(base, "private", `kiln-base:${PASSWORD}`);
    const wrong = "wrong-prepull-password-58";
    const job = makeJob({
      orchestrator: harness.orchestrator,
      registryHost: harness.registry.host,
      layers: [layer(0, "refused", [`FROM ${base}`], harness.registry.host, { baseAuth: { kind: "static", secret: "bad" } })],
      secrets: { bad: { REGISTRY_USERNAME: "kiln-base", REGISTRY_PASSWORD: wrong } },
    });
    const final = await run(job);
    expect(final).toMatchObject({ type: "failed", reason: "build", exitCode: null, layerKey: job.layers[0]!.key });
    expect(final.type === "failed" && final.message).toMatch(
      /^could not pull \S+: the registry refused this job's credentials \(.*(unauthorized|authentication required)/i,
    );
    // The pull ahead failed, was logged, and the build then pulled as it always did.
    expect(systemLog()).toContain(`could not pull ${base} ahead of the build (`);
    expect(toolOutput()).toMatch(BUILD_PULLS);
    const pulls = spansOf(harness.orchestrator.events, job.layers[0]!.key).filter((p) => p.kind === "pull");
    expect(pulls.map((p) => [p.step === null ? "ahead" : "build", p.outcome])).toEqual([
      ["ahead", "failed"],
      ["build", "failed"],
    ]);
    expect(JSON.stringify(harness.orchestrator.events)).not.toContain(wrong);
  }, 300_000);
});

describe("a runner with pullBase never", () => {
  let never: RunningRunner;
  let workDir: string;

  beforeAll(async () => {
    // Another runner on the same image storage (the first one is idle meanwhile), so the base it never pulls is there.
    workDir = await mkdtemp(path.join(tmpdir(), "kiln-runner-never-"));
    await mkdir(path.join(workDir, "work"));
    never = await startRunner(
      {
        webhookSecrets: [harness.secret],
        host: "127.0.0.1",
        port: 0,
        workDir: path.join(workDir, "work"),
        cacheDir: path.join(workDir, "cache"),
        secretsDir: harness.secretsDir,
        storageRoot: harness.storage.root,
        storageRunRoot: harness.storage.runRoot,
        pullBase: "never",
        logFlushMs: 200,
      },
      { logger: silentLogger },
    );
  });
  afterAll(async () => {
    await never?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  }, 120_000);

  it("pulls nothing ahead and builds on the image it has", async () => {
    // The first runner pulls the base into the workspace's storage.
    expect(await run(await contextJob(harness.baseRef, "present"))).toMatchObject({ type: "succeeded" });
    const job = await contextJob(harness.baseRef, "never");
    expect(await run(job, never.url)).toMatchObject({ type: "succeeded" });
    const phases = spansOf(harness.orchestrator.events, job.layers[0]!.key);
    expect(phases.filter((p) => p.kind === "pull").map((p) => p.step)).toEqual([1]);
    expect(systemLog()).not.toContain("while the layer's inputs are prepared");
    expect(toolOutput()).not.toMatch(BUILD_PULLS);
    expect((await imageContents(job.layers[0]!.target)).files.get("/a.txt")?.data.toString()).toBe("never\n");
  }, 300_000);
});
