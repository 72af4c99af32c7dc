// Real buildah builds of the features around the Dockerfile lines: base images from a
// private registry (static credentials, Google's `_json_key`, AWS ECR tokens from a fake
// ECR), base images named through ARGs and build args on plain-HTTP registries (TLS and
// login decided from the expanded FROM, every stage's registry), and addPython's
// interpreter from a local python-build-standalone mirror.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import bcrypt from "bcryptjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Image, Secret } from "../../sdk/src/index.ts";
import type { Job } from "../../workers/protocol/runner-protocol.ts";
import { silentLogger } from "../src/logger.ts";
import { standaloneAsset } from "../src/python-standalone.ts";
import { type RunningRunner, startRunner } from "../src/runner.ts";
import { busyboxRootfs, pushRootfsImage, type TestStorage, testStorage } from "./helpers/base-images.ts";
import { type FakeEcr, startFakeEcr } from "./helpers/fake-ecr.ts";
import { FakeOrchestrator } from "./helpers/fake-orchestrator.ts";
import { imageContents } from "./helpers/inspect.ts";
import { dispatch, jobFromImage, layer, makeJob, testSecret } from "./helpers/jobs.ts";
import { fakePythonArchive, type PythonMirror, releaseFiles, startPythonMirror } from "./helpers/python-mirror.ts";
import { startRegistry, type TestRegistry } from "./helpers/registry.ts";
import { requireRoot, requireTools } from "./helpers/tools.ts";

const STATIC_PASSWORD = "static-registry-password-91b2";
const SERVICE_ACCOUNT = JSON.stringify({ type: "service_account", project_id: "kiln-test", private_key_id: "k1", client_email: "builder@kiln-test.iam.gserviceaccount.com" });
const ECR_PASSWORD = "ecr-token-password-5d1f";
const AWS = { accessKeyId: "AKIAKILNTESTEXAMPLE", secretAccessKey: "kiln/test/secret/access/key/EXAMPLE", region: "eu-west-1" };

let registry: TestRegistry;
let privateRegistry: TestRegistry;
let storage: TestStorage;
let runner: RunningRunner;
let secret: string;
let workDir: string;
let baseRef: string;
let privateRef: string;
let ecr: FakeEcr;
let mirror: PythonMirror;
let orchestrator: FakeOrchestrator;

beforeAll(async () => {
  requireRoot();
  requireTools("buildah", "skopeo", "docker-registry", "busybox");
  const htpasswd = [
    `kiln-base:${bcrypt.hashSync(STATIC_PASSWORD, 4)}`,
    `_json_key:${bcrypt.hashSync(SERVICE_ACCOUNT, 4)}`,
    `AWS:${bcrypt.hashSync(ECR_PASSWORD, 4)}`,
  ].join("\n");
  [registry, privateRegistry, storage] = await Promise.all([startRegistry(), startRegistry({ htpasswd: `${htpasswd}\n` }), testStorage()]);
  baseRef = `${registry.host}/base/busybox:1`;
  privateRef = `${privateRegistry.host}/private/busybox:1`;
  const rootfs = await busyboxRootfs();
  await pushRootfsImage(rootfs, baseRef, storage);
  await pushRootfsImage(rootfs, privateRef, storage, `kiln-base:${STATIC_PASSWORD}`);
  ecr = await startFakeEcr({ ...AWS, password: ECR_PASSWORD });
  const python = { release: "20240107", version: "3.12.1" };
  const asset = standaloneAsset({ series: "3.12", libc: "gnu", ...python });
  mirror = await startPythonMirror(releaseFiles(python.release, asset, await fakePythonArchive(python.version)));
  secret = testSecret();
  workDir = await mkdtemp(path.join(tmpdir(), "kiln-runner-work-"));
  runner = await startRunner(
    {
      webhookSecrets: [secret],
      host: "127.0.0.1",
      port: 0,
      workDir,
      cacheDir: path.join(workDir, "cache"),
      storageRoot: storage.root,
      storageRunRoot: storage.runRoot,
      // Re-pull bases every time, so every test really authenticates.
      pullBase: "always",
      insecureRegistries: [privateRegistry.host],
      ecrEndpoint: ecr.endpoint,
      pythonMirror: mirror.url,
      logFlushMs: 200,
    },
    { logger: silentLogger },
  );
}, 300_000);

afterEach(async () => {
  await orchestrator?.close();
});

afterAll(async () => {
  await runner?.close();
  await Promise.all([registry?.stop(), privateRegistry?.stop(), ecr?.close(), mirror?.close()]);
  await storage?.dispose();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function run(job: Job) {
  expect((await dispatch(runner.url, job, secret)).status).toBe(202);
  return orchestrator.final();
}

function privateJob(baseAuth: NonNullable<Job["layers"][number]["baseAuth"]> | null, secrets: Job["secrets"]): Job {
  return makeJob({
    orchestrator,
    registryHost: registry.host,
    layers: [layer(0, "private", [`FROM ${privateRef}`, "RUN echo pulled-private-base > /proof"], registry.host, { baseAuth })],
    secrets,
  });
}

describe("base images from a private registry", () => {
  it("cannot pull without credentials (the registry really requires them)", async () => {
    orchestrator = await FakeOrchestrator.start(secret);
    const final = await run(privateJob(null, {}));
    expect(final).toMatchObject({ type: "failed", reason: "infra" });
    expect(final.type === "failed" && final.message).toMatch(/unauthorized|authentication required/i);
  }, 120_000);

  it("pulls with static REGISTRY_USERNAME / REGISTRY_PASSWORD, never logging the password", async () => {
    orchestrator = await FakeOrchestrator.start(secret);
    const image = Image.fromRegistry(privateRef, { secret: Secret.fromName("base-creds") }).runCommands("echo built-on-private > /proof");
    const job = await jobFromImage(image, { orchestrator, registryHost: registry.host, secrets: { "base-creds": { REGISTRY_USERNAME: "kiln-base", REGISTRY_PASSWORD: STATIC_PASSWORD } } });
    expect(job.layers[0]!.baseAuth).toEqual({ kind: "static", secret: "base-creds" });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect((await imageContents(job.layers[1]!.target)).files.get("/proof")?.data.toString()).toBe("built-on-private\n");
    const log = orchestrator.logText();
    expect(log).not.toContain(STATIC_PASSWORD);
    expect(log).not.toContain(Buffer.from(`kiln-base:${STATIC_PASSWORD}`).toString("base64"));
  }, 120_000);

  it("logs in as _json_key with SERVICE_ACCOUNT_JSON (Google Artifact Registry)", async () => {
    orchestrator = await FakeOrchestrator.start(secret);
    const job = privateJob({ kind: "gcp", secret: "gcp-sa" }, { "gcp-sa": { SERVICE_ACCOUNT_JSON: SERVICE_ACCOUNT } });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect(orchestrator.logText()).not.toContain("builder@kiln-test.iam.gserviceaccount.com");
  }, 120_000);

  it("logs in with an ECR token obtained by a SigV4-signed GetAuthorizationToken", async () => {
    orchestrator = await FakeOrchestrator.start(secret);
    const calls = ecr.calls;
    const job = privateJob(
      { kind: "aws", secret: "aws-creds" },
      { "aws-creds": { AWS_ACCESS_KEY_ID: AWS.accessKeyId, AWS_SECRET_ACCESS_KEY: AWS.secretAccessKey, AWS_REGION: AWS.region } },
    );
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect(ecr.calls).toBe(calls + 1);
    expect(ecr.problems).toEqual([]);
    const log = orchestrator.logText();
    for (const value of [ECR_PASSWORD, AWS.secretAccessKey]) expect(log).not.toContain(value);
  }, 120_000);

  it("fails with infra and a clear message, without the password, when the credentials are wrong", async () => {
    orchestrator = await FakeOrchestrator.start(secret);
    const wrong = "wrong-password-value-77";
    const final = await run(privateJob({ kind: "static", secret: "bad" }, { bad: { REGISTRY_USERNAME: "kiln-base", REGISTRY_PASSWORD: wrong } }));
    expect(final).toMatchObject({ type: "failed", reason: "infra" });
    expect(final.type === "failed" && final.message).toMatch(/unauthorized|authentication required/i);
    expect(JSON.stringify(orchestrator.events)).not.toContain(wrong);
  }, 120_000);
});

describe("base images named through ARGs", () => {
  const staticCreds = { "base-creds": { REGISTRY_USERNAME: "kiln-base", REGISTRY_PASSWORD: STATIC_PASSWORD } };

  it("pulls over plain HTTP, with the login, from an insecure registry named by an ARG default", async () => {
    orchestrator = await FakeOrchestrator.start(secret);
    const lines = [`ARG BASE=${privateRef}`, "FROM $BASE", "RUN echo via-arg > /proof"];
    const job = makeJob({ orchestrator, registryHost: registry.host, layers: [layer(0, "arg", lines, registry.host, { baseAuth: { kind: "static", secret: "base-creds" } })], secrets: staticCreds });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect((await imageContents(job.layers[0]!.target)).files.get("/proof")?.data.toString()).toBe("via-arg\n");
  }, 120_000);

  it("pulls from the job's own insecure registry named by a build arg", async () => {
    orchestrator = await FakeOrchestrator.start(secret);
    const lines = ["ARG BASE", "FROM ${BASE}", "RUN echo via-build-arg > /proof"];
    const job = makeJob({ orchestrator, registryHost: registry.host, layers: [layer(0, "build-arg", lines, registry.host, { buildArgs: { BASE: baseRef } })] });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect((await imageContents(job.layers[0]!.target)).files.get("/proof")?.data.toString()).toBe("via-build-arg\n");
  }, 120_000);

  it("pulls every stage's base when all of their registries are insecure", async () => {
    orchestrator = await FakeOrchestrator.start(secret);
    const lines = [`ARG PRIVATE=${privateRef}`, "FROM ${PRIVATE} AS tools", "RUN echo from-tools > /tool", `FROM \${PUBLIC:-${baseRef}}`, "COPY --from=tools /tool /tool"];
    const job = makeJob({ orchestrator, registryHost: registry.host, layers: [layer(0, "stages", lines, registry.host, { baseAuth: { kind: "static", secret: "base-creds" } })], secrets: staticCreds });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect((await imageContents(job.layers[0]!.target)).files.get("/tool")?.data.toString()).toBe("from-tools\n");
  }, 120_000);
});

describe("addPython", () => {
  it("copies the verified standalone interpreter from the mirror into the image", async () => {
    orchestrator = await FakeOrchestrator.start(secret);
    const image = Image.fromRegistry(baseRef, { addPython: "3.12" }).runCommands("python --version > /pyver");
    const job = await jobFromImage(image, { orchestrator, registryHost: registry.host });
    expect(job.layers[0]!.pythonStandalone).toEqual({ series: "3.12", release: "20240107", version: "3.12.1", libc: "gnu" });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    const files = (await imageContents(job.layers[1]!.target)).files;
    expect(files.get("/pyver")?.data.toString()).toBe("Python 3.12.1 (kiln test build)\n");
    expect(files.get("/usr/local/lib/python3.12/os.py")?.data.toString()).toBe("# stdlib stand-in\n");
    expect(files.has("/python")).toBe(false);
  }, 120_000);
});
