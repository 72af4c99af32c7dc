// The job loop's pipeline, with a scripted backend (no buildah, no registry): layer i is
// pushed while layer i+1 builds, pushes run one at a time, `layer_succeeded` comes in layer
// order before `succeeded`, GPUs are held only while building, and the failure rules: a
// build failing during an earlier push still reports the pushed layer; a failing push stops
// the running build and names its own layer; cancel and fencing stop build and push alike;
// auth files and directories last until every push has settled.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Job } from "@kiln-build/protocol";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { JobOutcome } from "../src/job-run.ts";
import { silentLogger } from "../src/logger.ts";
import { type RunningRunner, startRunner } from "../src/runner.ts";
import { FakeOrchestrator } from "./helpers/fake-orchestrator.ts";
import { contextBundle, dispatch, layer, makeJob, testSecret } from "./helpers/jobs.ts";
import { failingStep, fakeManifest, fakeRegistryFetch, ScriptBackend } from "./helpers/script-backend.ts";

const REGISTRY = "registry.kiln.test:5000";
const backend = new ScriptBackend();
const outcomes = new Map<string, JobOutcome>();
let dir: string;
let workDir: string;
let secretsDir: string;
let secret: string;
let runner: RunningRunner;
let orchestrator: FakeOrchestrator;
let marks: string;
let testNo = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-job-run-"));
  workDir = path.join(dir, "work");
  secretsDir = path.join(dir, "secrets");
  secret = testSecret();
  runner = await startRunner(
    {
      webhookSecrets: [secret],
      host: "127.0.0.1",
      port: 0,
      workDir,
      secretsDir,
      cacheDir: path.join(dir, "cache"),
      gpus: "T4:1",
      heartbeatMs: 200,
      logFlushMs: 100,
      killGraceMs: 1_000,
    },
    {
      logger: silentLogger,
      backend,
      fetch: fakeRegistryFetch(REGISTRY),
      onOutcome: (run, outcome) => outcomes.set(run.job.jobId, outcome),
    },
  );
});

beforeEach(async () => {
  orchestrator = await FakeOrchestrator.start(secret);
  marks = path.join(dir, `marks-${testNo++}`);
  await mkdir(marks);
  backend.reset(marks);
});

afterEach(async () => {
  await orchestrator.close();
});

afterAll(async () => {
  await runner?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A job of `count` layers, each FROM the previous; all ask for the machine's only GPU when `gpu` is set. */
function chainJob(count: number, options: { gpu?: boolean } = {}): Job {
  const layers = Array.from({ length: count }, (_, i) =>
    layer(
      i,
      `layer-${i}`,
      i === 0 ? ["FROM busybox", `RUN echo ${i}`] : ["FROM base", `RUN echo ${i}`],
      REGISTRY,
      options.gpu ? { gpu: { type: "T4", count: 1 } } : {},
    ),
  );
  return makeJob({ orchestrator, registryHost: REGISTRY, layers });
}

/** Dispatches `job` and waits for the runner to finish it (outcome recorded, directories removed). */
async function run(job: Job): Promise<JobOutcome> {
  expect((await dispatch(runner.url, job, secret)).status).toBe(202);
  for (let i = 0; i < 600 && !outcomes.has(job.jobId); i++) await new Promise((r) => setTimeout(r, 50));
  const outcome = outcomes.get(job.jobId);
  if (!outcome) throw new Error(`the job did not finish; timeline: ${backend.timeline().join(", ")}`);
  return outcome;
}

/** Event types other than logs, heartbeats and phases, in delivery order. */
function milestones(): string[] {
  return orchestrator.events
    .filter((e) => e.type !== "log" && e.type !== "logs" && e.type !== "heartbeat" && e.type !== "phases")
    .map((e) => (e.type === "layer_succeeded" ? `layer_succeeded:${e.layerKey}` : e.type));
}

/** Asserts that `a` was marked before `b`. */
function before(a: string, b: string): void {
  const timeline = backend.timeline();
  expect(timeline, `${a} before ${b} in ${timeline.join(", ")}`).toContain(a);
  expect(timeline, `${a} before ${b} in ${timeline.join(", ")}`).toContain(b);
  expect(timeline.indexOf(a), `${a} before ${b} in ${timeline.join(", ")}`).toBeLessThan(timeline.indexOf(b));
}

/** A file holding `text`, for a build context. */
async function fileWith(text: string): Promise<string> {
  const file = path.join(marks, `source-${text}`);
  await writeFile(file, text);
  return file;
}

async function expectCleanedUp(): Promise<void> {
  expect(await readdir(workDir)).toEqual([]);
  expect(await readdir(path.join(secretsDir, "jobs"))).toEqual([]);
}

describe("the layer pipeline", () => {
  it("pushes layer i while layer i+1 builds, one push at a time, and reports layers in order before succeeded", async () => {
    const job = chainJob(3, { gpu: true });
    // Push i cannot finish before build i+1 started: a runner that waited for the push would time out here.
    // Push i+1 refuses to start before push i finished. All layers share the only GPU, so the overlap
    // also proves a pushing layer no longer holds it.
    for (const i of [0, 1, 2]) {
      backend.scripts.set(i, {
        push: [
          i > 0 ? `[ -e "$M/push-${i - 1}-end" ] || { echo "push ${i} overlaps push ${i - 1}"; exit 7; }` : "",
          `mark push-${i}-start`,
          i < 2 ? `await build-${i + 1}-start` : "",
          `sleep 0.2; [ -f "$AUTH" ] || { echo "auth file gone"; exit 8; }`,
          `mark push-${i}-end`,
        ].join("\n"),
      });
    }
    expect(await run(job)).toEqual({ status: "succeeded" });
    expect(milestones()).toEqual(["accepted", "started", ...job.layers.map((l) => `layer_succeeded:${l.key}`), "succeeded"]);
    for (const [i, event] of orchestrator.ofType("layer_succeeded").entries()) {
      expect(event).toMatchObject({ reference: job.layers[i]!.target, sizeBytes: 1100 });
      expect(event.digest).toBe(`sha256:${createHash("sha256").update(fakeManifest(job.layers[i]!.target)).digest("hex")}`);
    }
    before("build-0-end", "push-0-start");
    before("build-1-start", "push-0-end");
    before("push-0-end", "push-1-start");
    before("build-2-start", "push-1-end");
    before("push-1-end", "push-2-start");
    expect(backend.requests.map((r) => r.gpus.map((g) => g.type))).toEqual([["T4"], ["T4"], ["T4"]]);
    // Layer i+1 builds FROM layer i's local image.
    expect(backend.requests.map((r) => r.pull)).toEqual(["missing", "missing", "missing"]);
    await expectCleanedUp();
  });

  it("downloads and unpacks layer i+1's build context while layer i builds", async () => {
    const job = chainJob(2);
    job.layers[1]!.context = orchestrator.addContext(
      await contextBundle([{ kind: "file", localPath: await fileWith("ready"), archivePath: "next.txt" }], path.join(dir, "hash-index")),
    );
    // Layer 0's build waits for layer 1's unpacked context, beside its own directory: a runner
    // that fetched it only when layer 1's build began would time out here.
    backend.scripts.set(0, { build: `mark build-0-start\nawait_file "$CONTEXT/../../layer-1/context/next.txt"\nmark build-0-end` });
    expect(await run(job)).toEqual({ status: "succeeded" });
    await expectCleanedUp();
  });

  it("keeps working when the build itself pushes (BuildKit backends)", async () => {
    backend.reset(marks, { pushes: false });
    const job = chainJob(3);
    expect(await run(job)).toEqual({ status: "succeeded" });
    expect(milestones()).toEqual(["accepted", "started", ...job.layers.map((l) => `layer_succeeded:${l.key}`), "succeeded"]);
    expect(backend.timeline()).toEqual(["build-0-start", "build-0-end", "build-1-start", "build-1-end", "build-2-start", "build-2-end"]);
    await expectCleanedUp();
  });
});

describe("failures while a push runs", () => {
  it("a build failing during the previous layer's push fails the job with the build's failure, after reporting the pushed layer", async () => {
    const job = chainJob(3);
    // The push outlives the failed build and still needs its auth file afterwards.
    backend.scripts.set(0, {
      push: `mark push-0-start; await build-1-end; sleep 1; [ -f "$AUTH" ] || { echo "auth file gone"; exit 8; }; mark push-0-end`,
    });
    backend.scripts.set(1, { build: `mark build-1-start; echo about to fail; mark build-1-end; ${failingStep(3)}` });
    const outcome = await run(job);
    expect(outcome).toMatchObject({ status: "failed", reason: "build" });
    const failed = orchestrator.ofType("failed")[0]!;
    expect(failed).toMatchObject({ reason: "build", exitCode: 3, layerKey: job.layers[1]!.key });
    expect(failed.logTail.join("\n")).toContain("about to fail");
    // Layer 0 made it to the registry: reported, before the failure.
    expect(milestones()).toEqual(["accepted", "started", `layer_succeeded:${job.layers[0]!.key}`, "failed"]);
    expect(backend.marked("push-0-end")).toBe(true);
    expect(backend.marked("build-2-start")).toBe(false);
    await expectCleanedUp();
  });

  it("a build failing during a push that then fails too reports the build's failure and no layer", async () => {
    const job = chainJob(2);
    backend.scripts.set(0, { push: `await build-1-end; sleep 0.5; echo "push refused" >&2; exit 1` });
    backend.scripts.set(1, { build: `mark build-1-end; ${failingStep(4)}` });
    await run(job);
    expect(orchestrator.ofType("failed")[0]).toMatchObject({ reason: "build", exitCode: 4, layerKey: job.layers[1]!.key });
    expect(orchestrator.ofType("layer_succeeded")).toEqual([]);
    await expectCleanedUp();
  });

  it("a push failing while the next layer builds stops that build and fails the job (infra) with the pushed layer's key", async () => {
    const job = chainJob(3);
    backend.scripts.set(0, { push: `await build-1-start; echo "denied: requested access to the resource is denied" >&2; exit 1` });
    backend.scripts.set(1, { build: "mark build-1-start; sleep 30; mark build-1-end" });
    const started = Date.now();
    const outcome = await run(job);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(outcome).toMatchObject({ status: "failed", reason: "infra" });
    const failed = orchestrator.ofType("failed")[0]!;
    expect(failed).toMatchObject({ reason: "infra", layerKey: job.layers[0]!.key, exitCode: null });
    expect(failed.message).toContain("buildah push exited with 1: denied: requested access to the resource is denied");
    expect(orchestrator.ofType("layer_succeeded")).toEqual([]);
    expect(backend.marked("build-1-end")).toBe(false);
    expect(backend.marked("build-2-start")).toBe(false);
    // The stopped build may have left a working container: the storage janitor cleaned up.
    expect(backend.marked("cleanup")).toBe(true);
    await expectCleanedUp();
  });

  it("a push failing after the last build fails the job with that layer's key, after reporting the layers before it", async () => {
    const job = chainJob(2);
    backend.scripts.set(1, { push: `echo "blob upload unknown" >&2; exit 2` });
    await run(job);
    expect(orchestrator.ofType("failed")[0]).toMatchObject({ reason: "infra", layerKey: job.layers[1]!.key });
    expect(milestones()).toEqual(["accepted", "started", `layer_succeeded:${job.layers[0]!.key}`, "failed"]);
  });

  for (const how of ["cancelled", "fenced"] as const) {
    it(`stops the running build and the running push when the job is ${how}`, async () => {
      const job = chainJob(3);
      backend.scripts.set(0, { push: "mark push-0-start; sleep 30; mark push-0-end" });
      backend.scripts.set(1, { build: "mark build-1-start; sleep 30; mark build-1-end" });
      const done = run(job);
      done.catch(() => {}); // awaited below; a failure to start both must not go unhandled meanwhile
      await orchestrator.waitFor(
        () => backend.marked("push-0-start") && backend.marked("build-1-start"),
        20_000,
        "a push and a build at once",
      );
      const stoppedAt = Date.now();
      if (how === "cancelled") orchestrator.cancel = true;
      else orchestrator.staleAttempts.add(job.attemptId);
      const outcome = await done;
      expect(Date.now() - stoppedAt).toBeLessThan(10_000);
      if (how === "cancelled") {
        expect(outcome).toMatchObject({ status: "failed", reason: "cancelled" });
        expect(orchestrator.ofType("failed")[0]).toMatchObject({ reason: "cancelled" });
      } else {
        expect(outcome).toEqual({ status: "fenced" });
        expect(orchestrator.ofType("failed")).toEqual([]);
      }
      expect(orchestrator.ofType("layer_succeeded")).toEqual([]);
      expect(backend.marked("push-0-end")).toBe(false);
      expect(backend.marked("build-1-end")).toBe(false);
      await expectCleanedUp();
    });
  }
});
