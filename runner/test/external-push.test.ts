/**
 * Pushes to external registries (external-push.ts, push-job.ts) against real registries:
 * Debian's `docker-registry` as the source (plain http, as the built-in registry in local
 * development) and as the target, with htpasswd auth and TLS from a throw-away CA the runner
 * is told to trust. Images are written with the OCI API directly, so no build tool is needed.
 */
import { createHash, randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import type { JobPush } from "@kiln-build/protocol";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyImage } from "../src/external-push.ts";
import { type PushOutcome, runPushes } from "../src/push-job.ts";
import { RegistrySession } from "../src/registry-client.ts";
import { registryFetch } from "../src/registry-tls.ts";
import { startRegistry, type TestRegistry } from "./helpers/registry.ts";
import { makeTestCa, type TestCa } from "./helpers/tls-ca.ts";

const PASSWORD = "push-password-7c41e2";
const LOGIN = { username: "pusher", password: PASSWORD };
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

let ca: TestCa;
let source: TestRegistry;
let target: TestRegistry;
let caFetch: typeof fetch;

beforeAll(async () => {
  ca = makeTestCa();
  caFetch = registryFetch(ca.caFile);
  source = await startRegistry();
  target = await startRegistry({ htpasswd: `pusher:${bcrypt.hashSync(PASSWORD, 4)}\n`, tls: ca });
}, 60_000);

afterAll(async () => {
  await source?.stop();
  await target?.stop();
  rmSync(ca.dir, { recursive: true, force: true });
});

const sha = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

// One image in the source registry: a random layer blob, a config with one label, an OCI manifest.
async function sourceImage(repo: string, platform = "amd64"): Promise<{ reference: string; digest: string; layer: string; bytes: Buffer }> {
  const session = new RegistrySession(`${source.host}/${repo}:x`, { insecure: true });
  const layer = randomBytes(200_000);
  const layerDigest = await session.putBlob(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform,
      os: "linux",
      config: { Labels: { base: "yes" } },
      rootfs: { type: "layers", diff_ids: [layerDigest] },
    }),
  );
  const configDigest = await session.putBlob(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layerDigest, size: layer.length }],
    }),
  );
  const digest = await session.putManifest(sha(manifest), manifest, OCI_MANIFEST);
  return { reference: `${source.host}/${repo}@${digest}`, digest, layer: layerDigest, bytes: manifest };
}

const push: JobPush = {
  source: null,
  targets: [],
  labels: { "org.example.team": "builds" },
  annotations: { "org.opencontainers.image.revision": "abc123", "build.kiln.id": "bd-test" },
};
const sourceSession = { insecure: true };
const targetSession = (repo: string) =>
  new RegistrySession(`${target.host}/${repo}:x`, { login: { host: target.host, ...LOGIN }, fetch: caFetch });

describe("copyImage to a TLS registry with htpasswd auth", () => {
  it("copies layers, labels the config, annotates the manifest and returns the digest the target serves", async () => {
    const image = await sourceImage("app");
    const reference = `${target.host}/team/app:v1`;
    const digest = await copyImage(
      { reference: image.reference, session: sourceSession },
      { reference, login: { host: target.host, ...LOGIN }, insecure: false },
      push,
      { fetch: caFetch },
    );
    const session = targetSession("team/app");
    const byTag = await session.manifest("v1");
    const byDigest = await session.manifest(digest);
    expect(byTag.digest).toBe(digest);
    expect(byDigest.digest).toBe(digest);
    const manifest = JSON.parse(byTag.bytes.toString("utf8"));
    expect(manifest.annotations).toEqual(push.annotations);
    // The labels changed the config, so its digest and the manifest's differ from the source's.
    expect(digest).not.toBe(image.digest);
    const config = JSON.parse(Buffer.from(await (await session.blob(manifest.config.digest)).arrayBuffer()).toString("utf8"));
    expect(config.config.Labels).toEqual({ base: "yes", "org.example.team": "builds" });
    expect(await session.hasBlob(image.layer)).toBe(true);
  });

  it("skips blobs the target has and gives the same digest for the same input", async () => {
    const image = await sourceImage("again");
    const to = { login: { host: target.host, ...LOGIN }, insecure: false };
    const lines: string[] = [];
    const first = await copyImage(
      { reference: image.reference, session: sourceSession },
      { reference: `${target.host}/again:a`, ...to },
      push,
      {
        fetch: caFetch,
      },
    );
    const second = await copyImage(
      { reference: image.reference, session: sourceSession },
      { reference: `${target.host}/again:b`, ...to },
      push,
      { fetch: caFetch, log: (line) => lines.push(line) },
    );
    expect(second).toBe(first);
    expect(lines.some((l) => l.includes("already there"))).toBe(true);
  });

  it("copies a multi-platform index: each platform's manifest, then the annotated index", async () => {
    const amd = await sourceImage("multi", "amd64");
    const arm = await sourceImage("multi", "arm64");
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.bytes.length, platform: { architecture: "amd64", os: "linux" } },
          { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.bytes.length, platform: { architecture: "arm64", os: "linux" } },
        ],
      }),
    );
    const indexDigest = await new RegistrySession(`${source.host}/multi:x`, { insecure: true }).putManifest("all", index, OCI_INDEX);
    const digest = await copyImage(
      { reference: `${source.host}/multi@${indexDigest}`, session: sourceSession },
      { reference: `${target.host}/multi:v1`, login: { host: target.host, ...LOGIN }, insecure: false },
      push,
      { fetch: caFetch },
    );
    const session = targetSession("multi");
    const pushed = JSON.parse((await session.manifest("v1")).bytes.toString("utf8"));
    expect((await session.manifest("v1")).digest).toBe(digest);
    expect(pushed.annotations).toEqual(push.annotations);
    expect(pushed.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual(["amd64", "arm64"]);
    for (const child of pushed.manifests) {
      const platform = JSON.parse((await session.manifest(child.digest)).bytes.toString("utf8"));
      expect(platform.annotations).toEqual(push.annotations);
    }
  });

  it("fails with the registry's message on a wrong password", async () => {
    const image = await sourceImage("denied");
    await expect(
      copyImage(
        { reference: image.reference, session: sourceSession },
        { reference: `${target.host}/denied:v1`, login: { host: target.host, username: "pusher", password: "wrong" }, insecure: false },
        push,
        { fetch: caFetch },
      ),
    ).rejects.toThrow(/UNAUTHORIZED: authentication required \(HTTP 401/);
  });

  it("does not trust the registry's CA without --ca-file", async () => {
    const image = await sourceImage("untrusted");
    const outcomes: PushOutcome[] = [];
    await runPushes({
      push: { ...push, targets: [{ reference: `${target.host}/untrusted:v1`, secret: "s" }] },
      source: image.reference,
      sourceLogin: { host: source.host, username: "", password: "" },
      sourceInsecure: true,
      logins: [{ host: target.host, ...LOGIN }],
      insecureHosts: [],
      fetch,
      signal: new AbortController().signal,
      log: () => {},
      mask: (text) => text,
      report: (outcome) => outcomes.push(outcome),
    });
    expect(outcomes[0]).toMatchObject({ status: "failed", digest: null });
    expect(outcomes[0]!.message).toMatch(/fetch failed: .*(certificate|self.signed)/i);
  });
});

describe("runPushes", () => {
  it("reports each target: a refused login fails that target only, masked, and the next one is pushed", async () => {
    const image = await sourceImage("two");
    const outcomes: PushOutcome[] = [];
    const lines: string[] = [];
    const bad = { host: target.host, username: "pusher", password: "wrong-password-913" };
    await runPushes({
      push: {
        ...push,
        targets: [
          { reference: `${target.host}/two:bad`, secret: "bad" },
          { reference: `${target.host}/two:good`, secret: "good" },
        ],
      },
      source: image.reference,
      sourceLogin: { host: source.host, username: "", password: "" },
      sourceInsecure: true,
      logins: [bad, { host: target.host, ...LOGIN }],
      insecureHosts: [],
      fetch: caFetch,
      signal: new AbortController().signal,
      log: (line) => lines.push(line),
      mask: (text) => text.replaceAll(bad.password, "****"),
      report: (outcome) => outcomes.push(outcome),
    });
    expect(outcomes.map((o) => o.status)).toEqual(["failed", "succeeded"]);
    expect(outcomes[0]!.message).toContain("UNAUTHORIZED");
    expect(outcomes[1]!.digest).toBe((await targetSession("two").manifest("good")).digest);
    expect(lines.join("\n")).not.toContain(bad.password);
  });

  it("reports a target whose login could not be had, without trying it", async () => {
    const image = await sourceImage("nologin");
    const outcomes: PushOutcome[] = [];
    await runPushes({
      push: { ...push, targets: [{ reference: `${target.host}/nologin:v1`, secret: "s" }] },
      source: image.reference,
      sourceLogin: { host: source.host, username: "", password: "" },
      sourceInsecure: true,
      logins: [new Error('registry secret "s" has no REGISTRY_PASSWORD; add it to the secret')],
      insecureHosts: [],
      fetch: caFetch,
      signal: new AbortController().signal,
      log: () => {},
      mask: (text) => text,
      report: (outcome) => outcomes.push(outcome),
    });
    expect(outcomes).toEqual([
      { reference: `${target.host}/nologin:v1`, status: "failed", digest: null, message: expect.stringContaining("REGISTRY_PASSWORD") },
    ]);
  });
});
