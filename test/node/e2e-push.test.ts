// End to end on the real stack, busybox base (issue 14, decision 0019): `image.build({ push })`
// copies the built image to an external registry, Debian's `docker-registry` with htpasswd auth
// and TLS from a throw-away CA the runner is told to trust (`KILN_RUNNER_CA_FILE`). skopeo and
// buildah pull it from there by tag and by digest; the pushed config has the label and the
// manifest Kiln's OCI annotations; a target whose secret holds a wrong password fails with the
// registry's message while the other succeeds; a fully cached resubmission pushes too; no
// password reaches the build log; the public status page lists the targets without overflowing a
// phone-sized screen (real Chromium).
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import bcrypt from "bcryptjs";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { updateReferrersTag } from "../../runner/src/push-attestations.ts";
import { RegistrySession } from "../../runner/src/registry-client.ts";
import { registryFetch } from "../../runner/src/registry-tls.ts";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import { startRegistry, type TestRegistry } from "../../runner/test/helpers/registry.ts";
import { makeTestCa, type TestCa } from "../../runner/test/helpers/tls-ca.ts";
import { Image, ImagePushError, VerificationError, verifyImage } from "../../sdk/src/index.ts";
import {
  type Buildah,
  type LocalRunner,
  newWorkspace,
  privateBuildah,
  pushBaseImage,
  requireE2eTools,
  type StackInfo,
  sharedStack,
  startLocalRunner,
  type Tenant,
} from "./e2e-stack.ts";

const USER = "pusher";
// Random per run, so finding one in a log can only mean it leaked there.
const PASSWORD = `good-${randomBytes(12).toString("hex")}`;
const WRONG_PASSWORD = `wrong-${randomBytes(12).toString("hex")}`;
const LABEL = { "org.example.team": "e2e-push" };
const SOURCE = "https://example.com/kiln/e2e-push";
const REVISION = "0123456789abcdef0123456789abcdef01234567";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const ARTIFACTS = path.resolve(import.meta.dirname, "../../test-artifacts");

let ca: TestCa;
let certDir: string;
let registry: TestRegistry;
let stack: StackInfo;
let tenant: Tenant;
let runner: LocalRunner;
let base: string;
let buildah: Buildah;
let browser: Browser | undefined;
/** The image of the first test, pushed to one target and refused by the other. */
let halfPushed: { imageId: string; digest: string } | undefined;

beforeAll(async () => {
  requireE2eTools("buildah", "busybox", "skopeo", "docker-registry", "openssl", "chromium");
  ca = makeTestCa();
  // skopeo and buildah take a directory whose `ca.crt` they trust (containers-certs.d layout).
  certDir = path.join(ca.dir, "certs");
  mkdirSync(certDir);
  copyFileSync(ca.caFile, path.join(certDir, "ca.crt"));
  registry = await startRegistry({ htpasswd: `${USER}:${bcrypt.hashSync(PASSWORD, 4)}\n`, tls: ca });
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "e2e-push");
  buildah = await privateBuildah();
  [runner, base] = await Promise.all([
    startLocalRunner(stack, tenant, { env: { KILN_RUNNER_CA_FILE: ca.caFile } }),
    busyboxRootfs().then((rootfs) => pushBaseImage(stack, tenant, rootfs, "busybox:1")),
  ]);
  const login = (password: string) => ({ json: { values: { REGISTRY_USERNAME: USER, REGISTRY_PASSWORD: password } } });
  await tenant.client.json("PUT", ["v1", "secrets", "registry-login"], login(PASSWORD));
  await tenant.client.json("PUT", ["v1", "secrets", "registry-wrong"], login(WRONG_PASSWORD));
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await runner?.stop();
  await registry?.stop();
  buildah?.dispose();
  if (ca) rmSync(ca.dir, { recursive: true, force: true });
}, 120_000);

function skopeo(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("skopeo", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`skopeo ${args[0]} exited ${code}:\n${err}`))));
  });
}

/** skopeo against the TLS registry: trusting only the test CA, with the good login. */
const skopeoTarget = (command: string, ...args: string[]) =>
  skopeo(command, "--cert-dir", certDir, "--creds", `${USER}:${PASSWORD}`, ...args);

type PushView = { reference: string; status: string; digest: string | null; message: string | null; attestations?: unknown };
type ImageView = { id: string; status: string; buildId: string | null; layers: { cached: boolean }[]; pushes?: PushView[] };

/** Every chunk of a build's log (`GET /v1/builds/:id/logs`), joined. */
async function allLogText(buildId: string): Promise<string> {
  let cursor = 0;
  let text = "";
  for (;;) {
    const page = await tenant.client.json<{ chunks: { data: string }[]; cursor: number; done: boolean }>(
      "GET",
      ["v1", "builds", buildId, "logs"],
      { query: { cursor } },
    );
    text += page.chunks.map((c) => c.data).join("");
    if (page.done || page.chunks.length === 0) return text;
    cursor = page.cursor;
  }
}

/**
 * What the registry serves for `reference`: the digest of its manifest bytes (checked against
 * skopeo's own), the annotations of the pushed manifest (or index), the config's labels.
 */
async function pulled(reference: string): Promise<{ digest: string; annotations: Record<string, string>; labels: Record<string, string> }> {
  const raw = await skopeoTarget("inspect", "--raw", `docker://${reference}`);
  const digest = `sha256:${createHash("sha256").update(raw).digest("hex")}`;
  const inspected = JSON.parse(await skopeoTarget("inspect", `docker://${reference}`)) as { Digest: string };
  expect(inspected.Digest).toBe(digest);
  const manifest = JSON.parse(raw) as { mediaType?: string; annotations?: Record<string, string> };
  const config = JSON.parse(await skopeoTarget("inspect", "--config", `docker://${reference}`)) as {
    config?: { Labels?: Record<string, string> };
  };
  if (manifest.mediaType === OCI_INDEX) expect(manifest.annotations).toBeDefined();
  return { digest, annotations: manifest.annotations ?? {}, labels: config.config?.Labels ?? {} };
}

const DSSE = "application/vnd.dsse.envelope.v1+json";
const KILN = path.resolve(import.meta.dirname, "../../sdk/dist/cli/bin.js");
const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** The CLI against the stack as the tenant, with `env` added. */
function kiln(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const full = { ...process.env, KILN_SERVER_URL: stack.url, KILN_TOKEN: tenant.token, NO_COLOR: "1", ...env };
    const child = spawn(process.execPath, [KILN, ...args], { env: full, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The image's view once its build ended (the runner reports the attestations before `succeeded`). */
async function settledImage(imageId: string): Promise<ImageView> {
  for (let i = 0; ; i++) {
    const view = await tenant.client.json<ImageView>("GET", ["v1", "images", imageId]);
    const build = await tenant.client.json<{ status: string }>("GET", ["v1", "builds", view.buildId!]);
    if (["succeeded", "failed", "cancelled", "timeout"].includes(build.status) || i > 60) return view;
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe("pushes to an external TLS registry with htpasswd auth", { timeout: 600_000 }, () => {
  const marker = `push-${Date.now()}`;
  const definition = () => Image.fromRegistry(base).runCommands(`echo ${marker} > /marker`);
  const good = () => `${registry.host}/e2e/app:v1`;
  const denied = () => `${registry.host}/e2e/denied:v1`;

  it("pushes the built image (pullable by tag and digest, labelled, annotated); a wrong password fails only its target", async () => {
    const error = await definition()
      .build({
        client: tenant.client,
        logs: false,
        push: [good(), { reference: denied(), secret: "registry-wrong" }],
        pushSecret: "registry-login",
        labels: LABEL,
        source: SOURCE,
        revision: REVISION,
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error, `the build should raise ImagePushError\n${runner.log().slice(-4000)}`).toBeInstanceOf(ImagePushError);
    const pushError = error as ImagePushError;
    expect(pushError.message).toContain(denied());
    expect(pushError.failed.map((f) => f.reference)).toEqual([denied()]);
    expect(pushError.failed[0]!.message).toMatch(/UNAUTHORIZED: authentication required \(HTTP 401/);
    const [pushedGood, pushedDenied] = pushError.pushes;
    halfPushed = { imageId: pushError.imageId, digest: pushedGood!.digest! };
    expect(pushedGood).toMatchObject({ reference: good(), status: "succeeded", message: null });
    expect(pushedGood!.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(pushedDenied).toMatchObject({ reference: denied(), status: "failed", digest: null });

    // The API shows the same per-target results; the image itself is built.
    const view = await tenant.client.json<ImageView>("GET", ["v1", "images", pushError.imageId]);
    expect(view.status).toBe("succeeded");
    const withoutAttestations = (pushes: readonly PushView[] | undefined) => pushes?.map(({ attestations: _, ...p }) => p);
    expect(withoutAttestations(view.pushes)).toEqual(withoutAttestations(pushError.pushes));

    // By tag: the digest the runner reported is the digest of the manifest the registry serves.
    const byTag = await pulled(good());
    expect(byTag.digest).toBe(pushedGood!.digest);
    expect(byTag.labels).toMatchObject(LABEL);
    expect(byTag.annotations).toMatchObject({
      "org.opencontainers.image.source": SOURCE,
      "org.opencontainers.image.revision": REVISION,
      "build.kiln.id": pushError.buildId,
    });
    expect(Date.parse(byTag.annotations["org.opencontainers.image.created"] ?? "")).toBeGreaterThan(Date.now() - 3_600_000);

    // By digest: skopeo copies it out and buildah pulls it, both trusting only the test CA.
    const byDigest = `${registry.host}/e2e/app@${pushedGood!.digest}`;
    const layout = path.join(ca.dir, "copied");
    await skopeo("copy", "--src-cert-dir", certDir, "--src-creds", `${USER}:${PASSWORD}`, `docker://${byDigest}`, `oci:${layout}:copied`);
    const copied = JSON.parse(readFileSync(path.join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    expect(copied.manifests.map((m) => m.digest)).toEqual([pushedGood!.digest]);
    await buildah.run("pull", "--cert-dir", certDir, "--creds", `${USER}:${PASSWORD}`, byDigest);
    expect((await buildah.run("inspect", "--format", "{{.FromImageDigest}}", byDigest)).trim()).toBe(pushedGood!.digest);
    const container = (await buildah.run("from", "--pull=never", byDigest)).trim();
    expect(await buildah.run("run", "--isolation", "chroot", container, "--", "cat", "/marker")).toBe(`${marker}\n`);
    // The denied target never got a manifest.
    await expect(skopeoTarget("inspect", `docker://${denied()}`)).rejects.toThrow(/manifest unknown|not found/i);

    const log = await allLogText(pushError.buildId!);
    expect(log).toContain(`pushed ${good()}@${pushedGood!.digest}`);
    expect(log).toContain(`push to ${denied()} failed`);
    expect(log).not.toContain(PASSWORD);
    expect(log).not.toContain(WRONG_PASSWORD);
  });

  it("copies the signed SBOM and provenance to the target; kiln verify checks them there and fails on a changed byte", async () => {
    expect(halfPushed, "the first test pushed an image").toBeDefined();
    const { imageId, digest } = halfPushed!;
    const view = await settledImage(imageId);
    // docker-registry 2.8 has no referrers API: found through the referrers tag schema's index.
    expect(view.pushes![0]!.attestations).toEqual({ status: "attached", count: 2, via: "tag", message: null });
    expect(view.pushes![1]!.attestations ?? null).toBeNull();
    const tag = `${registry.host}/e2e/app:sha256-${digest.slice(7)}`;
    const index = JSON.parse(await skopeoTarget("inspect", "--raw", `docker://${tag}`)) as {
      manifests: { digest: string; artifactType: string }[];
    };
    expect(index.manifests.map((m) => m.artifactType)).toEqual([DSSE, DSSE]);

    const env = { NODE_EXTRA_CA_CERTS: ca.caFile, KILN_REGISTRY_USERNAME: USER, KILN_REGISTRY_PASSWORD: PASSWORD };
    const ok = await kiln(["verify", good()], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`Verified ${registry.host}/e2e/app@${digest}`);
    expect(ok.stdout).toMatch(/built as: docker:\/\/[^ ]+\/layers@sha256:[0-9a-f]{64}/);
    // Without the login the registry refuses: no verification.
    expect((await kiln(["verify", good()], { NODE_EXTRA_CA_CERTS: ca.caFile })).code).not.toBe(0);
    const caFetch = registryFetch(ca.caFile);
    const verified = await verifyImage(good(), {
      client: tenant.client,
      registryLogin: { username: USER, password: PASSWORD },
      fetch: caFetch,
    });
    expect(verified).toMatchObject({ digest, sbom: { packages: expect.any(Number) } });
    expect(verified.provenance.builtImage).not.toContain(digest);

    // One byte of an attestation changed in transit: its digest no longer matches.
    const entry = index.manifests[0]!.digest;
    const session = new RegistrySession(`${registry.host}/e2e/app:v1`, {
      login: { host: registry.host, username: USER, password: PASSWORD },
      fetch: caFetch,
    });
    const artifact = JSON.parse((await session.manifest(entry)).bytes.toString("utf8")) as { layers: { digest: string; size: number }[] };
    const flipping: typeof fetch = async (input, init) => {
      const response = await caFetch(input, init);
      if (!String(input).includes(`/blobs/${artifact.layers[0]!.digest}`)) return response;
      const bytes = new Uint8Array(await response.arrayBuffer());
      bytes[40]! ^= 1;
      return new Response(bytes, { status: response.status, headers: response.headers });
    };
    const login = { username: USER, password: PASSWORD };
    await expect(verifyImage(good(), { client: tenant.client, registryLogin: login, fetch: flipping })).rejects.toThrow(VerificationError);

    // One byte of a signed payload changed and pushed next to the real ones: the signature fails.
    const envelope = JSON.parse(Buffer.from(await (await session.blob(artifact.layers[0]!.digest)).arrayBuffer()).toString("utf8"));
    const payload = Buffer.from(envelope.payload, "base64");
    payload[payload.length - 5]! ^= 1;
    const forgedBlob = Buffer.from(JSON.stringify({ ...envelope, payload: payload.toString("base64") }));
    const forged = {
      ...artifact,
      layers: [{ ...artifact.layers[0]!, digest: await session.putBlob(forgedBlob), size: forgedBlob.length }],
    };
    const forgedBytes = Buffer.from(JSON.stringify(forged));
    const forgedDigest = await session.putManifest(sha256(forgedBytes), forgedBytes, "application/vnd.oci.image.manifest.v1+json");
    const listed = {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: forgedDigest,
      size: forgedBytes.length,
      artifactType: DSSE,
    };
    await updateReferrersTag(session, digest, [listed]);
    const refused = await kiln(["verify", good()], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/no signature verifies/);
  });

  it("a fully cached resubmission with a new target pushes it", async () => {
    const target = `${registry.host}/e2e/app:v2`;
    const image = await definition().build({
      client: tenant.client,
      logs: false,
      push: [target],
      pushSecret: "registry-login",
      labels: LABEL,
    });
    const view = await tenant.client.json<ImageView>("GET", ["v1", "images", image.imageId!]);
    expect(view.layers.every((l) => l.cached)).toBe(true);
    expect(image.pushes).toMatchObject([
      { reference: target, status: "succeeded", digest: expect.stringMatching(/^sha256:/), message: null },
    ]);
    const pushed = await pulled(target);
    expect(pushed.digest).toBe(image.pushes![0]!.digest);
    expect(pushed.labels).toMatchObject(LABEL);
    expect(pushed.annotations["build.kiln.id"]).toBe(view.buildId);
    // A push-only job copies the attestations the image got when it was built, re-signed for this digest.
    expect((await settledImage(image.imageId!)).pushes![0]!.attestations).toEqual({
      status: "attached",
      count: 2,
      via: "tag",
      message: null,
    });

    const log = await allLogText(view.buildId!);
    expect(log).toContain(`pushed ${target}@${pushed.digest}`);
    expect(log).not.toContain(marker);
    expect(log).not.toContain(PASSWORD);
  });

  it("the public status page lists the targets, wrapping on a phone-sized screen", async () => {
    expect(halfPushed, "the first test pushed an image").toBeDefined();
    await tenant.client.json("PUT", ["v1", "tags", "pushed"], { json: { imageId: halfPushed!.imageId, public: true } });
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
    const page = await (await browser.newContext({ viewport: { width: 360, height: 800 }, javaScriptEnabled: false })).newPage();
    expect((await page.goto(`${stack.url}/images/by-tag/${tenant.workspace}/pushed`))?.status()).toBe(200);
    const section = page.locator("section#pushes");
    const rows = await section.locator("tbody tr").allInnerTexts();
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain(good());
    expect(rows[0]).toContain(halfPushed!.digest);
    expect(rows[1]).toContain(denied());
    expect(rows[1]).toMatch(/UNAUTHORIZED: authentication required/);
    // Nothing in the section is wider than the screen, and no cell's text spills out of it: the digest and references wrap.
    const widths = await section.evaluate((el) => ({
      section: el.getBoundingClientRect().right,
      scroll: el.scrollWidth - el.clientWidth,
      spilling: [...el.querySelectorAll("th, td")].filter((cell) => cell.scrollWidth > cell.clientWidth).map((cell) => cell.textContent),
      viewport: el.ownerDocument.documentElement.clientWidth,
    }));
    expect(widths.section).toBeLessThanOrEqual(widths.viewport);
    expect(widths.scroll).toBe(0);
    expect(widths.spilling).toEqual([]);
    mkdirSync(ARTIFACTS, { recursive: true });
    await section.screenshot({ path: path.join(ARTIFACTS, "status-page-pushes.png") });
  });
});
