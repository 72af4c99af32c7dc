// Real buildah builds of the features around the Dockerfile lines: base images from a
// private registry (static credentials, Google's `_json_key`, AWS ECR tokens from a fake
// ECR), base images named through ARGs and build args on plain-HTTP registries (TLS and
// login decided from the expanded FROM, every stage's registry), and addPython's
// interpreter from a local python-build-standalone mirror.

import type { Job } from "@kiln-build/protocol";
import bcrypt from "bcryptjs";
import { describe, expect, it } from "vitest";
import { Image, Secret } from "../../sdk/src/index.ts";
import { standaloneAsset } from "../src/python-standalone.ts";
import { busyboxRootfs, pushRootfsImage } from "./helpers/base-images.ts";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { type FakeEcr, startFakeEcr } from "./helpers/fake-ecr.ts";
import { imageContents } from "./helpers/inspect.ts";
import { dispatch, jobFromImage, layer, makeJob } from "./helpers/jobs.ts";
import { fakePythonArchive, type PythonMirror, releaseFiles, startPythonMirror } from "./helpers/python-mirror.ts";
import { startRegistry, type TestRegistry } from "./helpers/registry.ts";

const STATIC_PASSWORD = "static-registry-password-91b2";
const SERVICE_ACCOUNT = JSON.stringify({
  type: "service_account",
  project_id: "kiln-test",
  private_key_id: "k1",
  client_email: "builder@kiln-test.iam.gserviceaccount.com",
});
const ECR_PASSWORD = "ecr-token-password-5d1f";
const AWS = { accessKeyId: "AKIAKILNTESTEXAMPLE", secretAccessKey: "kiln/test/secret/access/key/EXAMPLE", region: "eu-west-1" };

let privateRegistry: TestRegistry;
let privateRef: string;
let ecr: FakeEcr;
let mirror: PythonMirror;
const harness = useBuildHarness({
  base: "busybox",
  async prepare({ storage }) {
    const htpasswd = [
      `kiln-base:${bcrypt.hashSync(STATIC_PASSWORD, 4)}`,
      `_json_key:${bcrypt.hashSync(SERVICE_ACCOUNT, 4)}`,
      `AWS:${bcrypt.hashSync(ECR_PASSWORD, 4)}`,
    ].join("\n");
    privateRegistry = await startRegistry({ htpasswd: `${htpasswd}\n` });
    privateRef = `${privateRegistry.host}/private/busybox:1`;
    await pushRootfsImage(await busyboxRootfs(), privateRef, storage, `kiln-base:${STATIC_PASSWORD}`);
    ecr = await startFakeEcr({ ...AWS, password: ECR_PASSWORD });
    const python = { release: "20240107", version: "3.12.1" };
    const asset = standaloneAsset({ series: "3.12", libc: "gnu", ...python });
    mirror = await startPythonMirror(releaseFiles(python.release, asset, await fakePythonArchive(python.version)));
    return {
      // Re-pull bases every time, so every test really authenticates.
      pullBase: "always",
      insecureRegistries: [privateRegistry.host],
      ecrEndpoint: ecr.endpoint,
      pythonMirror: mirror.url,
      logFlushMs: 200,
    };
  },
  async cleanup() {
    await Promise.all([privateRegistry?.stop(), ecr?.close(), mirror?.close()]);
  },
});

async function run(job: Job) {
  expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
  return harness.orchestrator.final();
}

function privateJob(baseAuth: NonNullable<Job["layers"][number]["baseAuth"]> | null, secrets: Job["secrets"]): Job {
  return makeJob({
    orchestrator: harness.orchestrator,
    registryHost: harness.registry.host,
    layers: [layer(0, "private", [`FROM ${privateRef}`, "RUN echo pulled-private-base > /proof"], harness.registry.host, { baseAuth })],
    secrets,
  });
}

describe("base images from a private registry", () => {
  it("cannot pull without credentials (the registry really requires them)", async () => {
    const final = await run(privateJob(null, {}));
    // Refused credentials fail the same way on every runner: a build failure, not retried.
    expect(final).toMatchObject({ type: "failed", reason: "build", exitCode: null });
    expect(final.type === "failed" && final.message).toMatch(
      /^could not pull \S+: the registry refused this job's credentials \(.*(unauthorized|authentication required)/i,
    );
  }, 120_000);

  it("pulls with static REGISTRY_USERNAME / REGISTRY_PASSWORD, never logging the password", async () => {
    const { orchestrator } = harness;
    const image = Image.fromRegistry(privateRef, { secret: Secret.fromName("base-creds") }).runCommands("echo built-on-private > /proof");
    const job = await jobFromImage(image, {
      orchestrator,
      registryHost: harness.registry.host,
      secrets: { "base-creds": { REGISTRY_USERNAME: "kiln-base", REGISTRY_PASSWORD: STATIC_PASSWORD } },
    });
    expect(job.layers[0]!.baseAuth).toEqual({ kind: "static", secret: "base-creds" });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect((await imageContents(job.layers[1]!.target)).files.get("/proof")?.data.toString()).toBe("built-on-private\n");
    const log = orchestrator.logText();
    expect(log).not.toContain(STATIC_PASSWORD);
    expect(log).not.toContain(Buffer.from(`kiln-base:${STATIC_PASSWORD}`).toString("base64"));
  }, 120_000);

  it("logs in as _json_key with SERVICE_ACCOUNT_JSON (Google Artifact Registry)", async () => {
    const { orchestrator } = harness;
    const job = privateJob({ kind: "gcp", secret: "gcp-sa" }, { "gcp-sa": { SERVICE_ACCOUNT_JSON: SERVICE_ACCOUNT } });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect(orchestrator.logText()).not.toContain("builder@kiln-test.iam.gserviceaccount.com");
  }, 120_000);

  it("logs in with an ECR token obtained by a SigV4-signed GetAuthorizationToken", async () => {
    const { orchestrator } = harness;
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

  it("fails (build, not retried) with a clear message, without the password, when the credentials are wrong", async () => {
    const { orchestrator } = harness;
    const wrong = "wrong-password-value-77";
    const final = await run(
      privateJob({ kind: "static", secret: "bad" }, { bad: { REGISTRY_USERNAME: "kiln-base", REGISTRY_PASSWORD: wrong } }),
    );
    expect(final).toMatchObject({ type: "failed", reason: "build" });
    expect(final.type === "failed" && final.message).toMatch(
      /could not pull .*refused this job's credentials.*(unauthorized|authentication required)/i,
    );
    expect(JSON.stringify(orchestrator.events)).not.toContain(wrong);
  }, 120_000);
});

describe("base images named through ARGs", () => {
  const staticCreds = { "base-creds": { REGISTRY_USERNAME: "kiln-base", REGISTRY_PASSWORD: STATIC_PASSWORD } };

  it("pulls over plain HTTP, with the login, from an insecure registry named by an ARG default", async () => {
    const { orchestrator } = harness;
    const lines = [`ARG BASE=${privateRef}`, "FROM $BASE", "RUN echo via-arg > /proof"];
    const job = makeJob({
      orchestrator,
      registryHost: harness.registry.host,
      layers: [layer(0, "arg", lines, harness.registry.host, { baseAuth: { kind: "static", secret: "base-creds" } })],
      secrets: staticCreds,
    });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect((await imageContents(job.layers[0]!.target)).files.get("/proof")?.data.toString()).toBe("via-arg\n");
  }, 120_000);

  it("pulls from the job's own insecure registry named by a build arg", async () => {
    const { orchestrator } = harness;
    const lines = ["ARG BASE", "FROM ${BASE}", "RUN echo via-build-arg > /proof"];
    const job = makeJob({
      orchestrator,
      registryHost: harness.registry.host,
      layers: [layer(0, "build-arg", lines, harness.registry.host, { buildArgs: { BASE: harness.baseRef } })],
    });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect((await imageContents(job.layers[0]!.target)).files.get("/proof")?.data.toString()).toBe("via-build-arg\n");
  }, 120_000);

  it("pulls every stage's base when all of their registries are insecure", async () => {
    const { orchestrator } = harness;
    const lines = [
      `ARG PRIVATE=${privateRef}`,
      "FROM ${PRIVATE} AS tools",
      "RUN echo from-tools > /tool",
      `FROM \${PUBLIC:-${harness.baseRef}}`,
      "COPY --from=tools /tool /tool",
    ];
    const job = makeJob({
      orchestrator,
      registryHost: harness.registry.host,
      layers: [layer(0, "stages", lines, harness.registry.host, { baseAuth: { kind: "static", secret: "base-creds" } })],
      secrets: staticCreds,
    });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    expect((await imageContents(job.layers[0]!.target)).files.get("/tool")?.data.toString()).toBe("from-tools\n");
  }, 120_000);
});

describe("addPython", () => {
  it("copies the verified standalone interpreter from the mirror into the image", async () => {
    const { orchestrator } = harness;
    const image = Image.fromRegistry(harness.baseRef, { addPython: "3.12" }).runCommands("python --version > /pyver");
    const job = await jobFromImage(image, { orchestrator, registryHost: harness.registry.host });
    expect(job.layers[0]!.pythonStandalone).toEqual({ series: "3.12", release: "20240107", version: "3.12.1", libc: "gnu" });
    expect(await run(job)).toMatchObject({ type: "succeeded" });
    const files = (await imageContents(job.layers[1]!.target)).files;
    expect(files.get("/pyver")?.data.toString()).toBe("Python 3.12.1 (kiln test build)\n");
    expect(files.get("/usr/local/lib/python3.12/os.py")?.data.toString()).toBe("# stdlib stand-in\n");
    expect(files.has("/python")).toBe(false);
  }, 120_000);
});
