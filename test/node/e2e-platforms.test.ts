// End to end on the real stack (decision 0023): a two-platform build of a busybox image with a
// `runCommands` step, FROM a two-platform base index in the built-in registry. One runner builds
// only linux/amd64; the other declares linux/arm64 by emulation (QEMU binfmt_misc, as its
// /v1/capabilities reports). The result is an OCI index with both platforms; each platform's
// image says x86_64 and aarch64 to `uname -m`; a resubmission is a cache hit for both; the
// amd64-only fleet gets no arm64 job; a platform no fleet offers is refused before any upload.
// With `tag` and `push`: the Kiln tag resolves to the OCI index in the built-in registry (and
// `--override-arch arm64` to the arm64 image), the whole index is copied to an external TLS
// registry with htpasswd auth (Debian's `docker-registry`), labelled and annotated, and the
// index's status page fits a phone and passes axe in real Chromium.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryFetch } from "../../runner/src/registry-tls.ts";
import { startRegistry, type TestRegistry } from "../../runner/test/helpers/registry.ts";
import { makeTestCa, type TestCa } from "../../runner/test/helpers/tls-ca.ts";
import { Image, InvalidError, verifyImage } from "../../sdk/src/index.ts";
import { checkPageInBrowser } from "./browser-checks.ts";
import {
  type Buildah,
  type LocalRunner,
  newWorkspace,
  privateBuildah,
  requireE2eTools,
  type StackInfo,
  sharedStack,
  startLocalRunner,
  type Tenant,
} from "./e2e-stack.ts";
import { pushMultiArchBusybox } from "./multi-arch-base.ts";

let stack: StackInfo;
let tenant: Tenant;
let amdOnly: LocalRunner;
let emulating: LocalRunner;
let base: string;
let buildah: Buildah;
let work: string;
let ca: TestCa;
let certDir: string;
let external: TestRegistry;
const USER = "pusher";
const PASSWORD = `pw-${Date.now()}`;

beforeAll(async () => {
  requireE2eTools("buildah", "busybox", "skopeo", "qemu-aarch64-static", "docker-registry", "openssl", "chromium");
  ca = makeTestCa();
  // skopeo takes a directory whose `ca.crt` it trusts (containers-certs.d layout).
  certDir = path.join(ca.dir, "certs");
  mkdirSync(certDir);
  copyFileSync(ca.caFile, path.join(certDir, "ca.crt"));
  external = await startRegistry({ htpasswd: `${USER}:${bcrypt.hashSync(PASSWORD, 4)}\n`, tls: ca });
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "e2e-platforms");
  work = mkdtempSync(path.join(os.tmpdir(), "kiln-e2e-platforms-"));
  const trustCa = { KILN_RUNNER_CA_FILE: ca.caFile };
  [amdOnly, emulating, base, buildah] = await Promise.all([
    startLocalRunner(stack, tenant, { name: "amd64-only", env: trustCa }),
    startLocalRunner(stack, tenant, {
      name: "emulating",
      platforms: { native: ["linux/amd64"], emulated: ["linux/arm64"] },
      env: trustCa,
    }),
    pushMultiArchBusybox(stack, tenant, "busybox-multi:1"),
    privateBuildah(),
  ]);
  await tenant.client.json("PUT", ["v1", "secrets", "external-login"], {
    json: { values: { REGISTRY_USERNAME: USER, REGISTRY_PASSWORD: PASSWORD } },
  });
}, 600_000);

afterAll(async () => {
  await Promise.all([amdOnly?.stop(), emulating?.stop(), external?.stop()]);
  buildah?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
  if (ca) rmSync(ca.dir, { recursive: true, force: true });
}, 120_000);

const creds = () => `e2e:${tenant.token}`;
type BuildView = { fleetId: string | null };
type IndexView = { status: string; digest: string; platforms: { platform: string; imageId: string; buildId: string | null }[] };

type RawIndex = {
  mediaType: string;
  manifests: { digest: string; platform: { os: string; architecture: string } }[];
  annotations?: Record<string, string>;
};

function skopeoRaw(reference: string): RawIndex {
  return JSON.parse(skopeo("inspect", "--raw", `docker://${reference}`));
}

/** skopeo against the built-in registry (plain http, the tenant's token), or the external one (`external`: its CA and login). */
function skopeo(...args: string[]): string {
  const reference = args.at(-1)!;
  const auth = reference.includes(external.host)
    ? ["--cert-dir", certDir, "--creds", `${USER}:${PASSWORD}`]
    : ["--tls-verify=false", "--creds", creds()];
  const r = spawnSync("skopeo", [...args.slice(0, -1), ...auth, reference], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`skopeo ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

const sha256 = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;

/**
 * `uname -m` run in the image of `platform` (under QEMU for arm64), then its /marker, written
 * by the build's RUN step. The marker is read from the mounted rootfs, not through a second
 * emulated process, so what it proves (what the build wrote) does not depend on emulation here.
 */
async function unameIn(reference: string, platform: string): Promise<string> {
  const container = (
    await buildah.run("from", "--platform", platform, "--tls-verify=false", "--creds", creds(), `docker://${reference}`)
  ).trim();
  const uname = (await buildah.run("run", "--isolation", "chroot", container, "--", "uname", "-m")).trim();
  const root = (await buildah.run("mount", container)).trim();
  return `${uname}\n${readFileSync(path.join(root, "marker"), "utf8").trim()}`;
}

describe("multi-platform images", { timeout: 900_000 }, () => {
  it("the emulating runner reports linux/arm64 in its capabilities", async () => {
    const caps = (await (await fetch(`${emulating.url}/v1/capabilities`)).json()) as {
      platforms: { native: string[]; emulated: string[] };
    };
    expect(caps.platforms.native).toEqual(["linux/amd64"]);
    expect(caps.platforms.emulated).toContain("linux/arm64");
  });

  it("builds an index of both platforms, runnable on each, and a resubmission is a cache hit for both", async () => {
    const marker = `platforms-${Date.now()}`;
    const define = () => Image.fromRegistry(base).runCommands(`echo ${marker} > /marker; uname -m >> /marker`);
    const built = await define().build({ client: tenant.client, platforms: ["linux/amd64", "linux/arm64"], logs: false });
    expect(built.digest).toMatch(/^sha256:/);
    expect(built.platforms?.map((p) => p.platform)).toEqual(["linux/amd64", "linux/arm64"]);
    const raw = skopeoRaw(built.reference!);
    expect(raw.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(raw.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(["linux/amd64", "linux/arm64"]);
    expect(raw.manifests.map((m) => m.digest)).toEqual(built.platforms!.map((p) => p.digest));
    // The RUN step ran on each platform (under QEMU for arm64), and the image runs there.
    expect(await unameIn(built.reference!, "linux/amd64")).toBe(`x86_64\n${marker}\nx86_64`);
    expect(await unameIn(built.reference!, "linux/arm64")).toBe(`aarch64\n${marker}\naarch64`);

    // The arm64 job went to the fleet that builds arm64; the amd64-only runner never saw one.
    const index = await tenant.client.json<IndexView>("GET", ["v1", "image-indexes", built.imageId!]);
    const arm = index.platforms.find((p) => p.platform === "linux/arm64")!;
    const armBuild = await tenant.client.json<BuildView>("GET", ["v1", "builds", arm.buildId!]);
    expect(armBuild.fleetId).toBe(emulating.fleetId);
    expect(amdOnly.log()).not.toContain(arm.buildId!);

    const again = await define().build({ client: tenant.client, platforms: ["linux/amd64", "linux/arm64"], logs: false });
    expect(again.digest).toBe(built.digest);
    expect(again.uploadedBytes).toBe(0);
    const cachedIndex = await tenant.client.json<IndexView>("GET", ["v1", "image-indexes", again.imageId!]);
    // Cache hits for both: each platform's image resolved without a build.
    expect(cachedIndex.platforms.map((p) => p.buildId)).toEqual([null, null]);
  });

  it("tags the index and pushes it whole to an external registry; its status page fits and passes axe", async () => {
    const marker = `tagged-${Date.now()}`;
    const target = `${external.host}/e2e/multi:v1`;
    const built = await Image.fromRegistry(base)
      .runCommands(`echo ${marker} > /marker; uname -m >> /marker`)
      .build({
        client: tenant.client,
        platforms: ["linux/amd64", "linux/arm64"],
        tag: "multi-app:v1",
        push: [target],
        pushSecret: "external-login",
        labels: { "org.example.team": "e2e-platforms" },
        logs: false,
      });
    const [amd, arm] = built.platforms!;
    // The Kiln tag is the OCI index in the built-in registry; arm64 clients get the arm64 image.
    const kilnTag = `${new URL(stack.url).host}/${tenant.workspace}/multi-app:v1`;
    const tagged = skopeo("inspect", "--raw", `docker://${kilnTag}`);
    expect(sha256(tagged)).toBe(built.digest);
    expect((JSON.parse(tagged) as RawIndex).manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual([
      "linux/amd64",
      "linux/arm64",
    ]);
    // (skopeo's `Digest` of a list reference is the list's: compare the image's layers instead.)
    type Inspected = { Architecture: string; Layers: string[] };
    const armInspect = JSON.parse(skopeo("inspect", "--override-arch", "arm64", `docker://${kilnTag}`)) as Inspected;
    const armImage = JSON.parse(skopeo("inspect", `docker://${arm!.reference}`)) as Inspected;
    expect(armInspect.Architecture).toBe("arm64");
    expect(armInspect.Layers).toEqual(armImage.Layers);
    expect(armInspect.Layers).not.toEqual((JSON.parse(skopeo("inspect", `docker://${amd!.reference}`)) as Inspected).Layers);
    expect(await unameIn(kilnTag, "linux/arm64")).toBe(`aarch64\n${marker}\naarch64`);

    // The external registry got the whole index: both platforms, annotated, each config labelled.
    expect(built.pushes).toMatchObject([
      { reference: target, status: "succeeded", digest: expect.stringMatching(/^sha256:/), message: null },
    ]);
    const pushedRaw = skopeo("inspect", "--raw", `docker://${target}`);
    expect(sha256(pushedRaw)).toBe(built.pushes![0]!.digest);
    const pushed = JSON.parse(pushedRaw) as RawIndex;
    expect(pushed.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(pushed.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(["linux/amd64", "linux/arm64"]);
    expect(pushed.annotations?.["org.opencontainers.image.created"]).toBeDefined();
    for (const arch of ["amd64", "arm64"]) {
      const config = JSON.parse(skopeo("inspect", "--config", "--override-arch", arch, `docker://${target}`)) as {
        architecture: string;
        config?: { Labels?: Record<string, string> };
      };
      expect(config.architecture).toBe(arch);
      expect(config.config?.Labels).toMatchObject({ "org.example.team": "e2e-platforms" });
    }
    // Only the index was tagged and pushed: each platform's own submission carries neither.
    for (const p of built.platforms!) {
      const view = await tenant.client.json<{ tags?: unknown[]; pushes?: unknown[] }>("GET", ["v1", "images", p.imageId]);
      expect(view.pushes).toBeUndefined();
      expect(view.tags ?? []).toEqual([]);
    }
    // Relabelled copies have their own digests; the built-in registry's stay as built.
    expect(pushed.manifests.map((m) => m.digest)).not.toContain(amd!.digest);

    // Each platform carries its own signed SBOM and provenance: in the built-in registry through the
    // Kiln tag, and re-signed for the relabelled copies in the external registry.
    const inKiln = await verifyImage(kilnTag, { client: tenant.client });
    expect(inKiln.platforms?.map((p) => [p.platform, p.digest])).toEqual(built.platforms!.map((p) => [p.platform, p.digest]));
    const outside = await verifyImage(target, {
      client: tenant.client,
      registryLogin: { username: USER, password: PASSWORD },
      fetch: registryFetch(ca.caFile),
    });
    expect(outside.digest).toBe(built.pushes![0]!.digest);
    expect(outside.platforms?.map((p) => p.digest)).toEqual(pushed.manifests.map((m) => m.digest));
    for (const [i, p] of (outside.platforms ?? []).entries()) expect(p.provenance.builtImage).toContain(built.platforms![i]!.digest!);

    // The index's page: every platform with its digest and a link to its image page.
    await tenant.client.json("PUT", ["v1", "tags", "multi-app:v1"], { json: { imageId: built.imageId, public: true } });
    const pageUrl = `${stack.url}/images/by-tag/${tenant.workspace}/multi-app:v1`;
    const html = await (await fetch(pageUrl)).text();
    for (const p of built.platforms!) {
      expect(html).toContain(p.digest);
      expect(html).toContain(`/images/${p.imageId}"`);
      expect((await fetch(`${stack.url}/images/${p.imageId}`)).status).toBe(200);
    }
    expect(html).toContain(target);
    await checkPageInBrowser(pageUrl, "index-page");
  });

  it("refuses a platform no fleet offers before uploading anything", async () => {
    const other = await newWorkspace(stack, "e2e-platforms-amd");
    const runner = await startLocalRunner(stack, other, { name: "amd-only-2" });
    try {
      const dir = path.join(work, "ctx");
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, "big.txt"), "x".repeat(100_000));
      const image = Image.fromRegistry(base).addLocalDir(dir, "/ctx", { copy: true }).runCommands("true");
      const error = await image.build({ client: other.client, platforms: ["linux/amd64", "linux/arm64"], logs: false }).catch((e) => e);
      expect(error).toBeInstanceOf(InvalidError);
      expect(String(error.message)).toContain("No runner fleet of this workspace builds linux/arm64");
      expect(String(error.message)).toContain("The fleets offer: linux/amd64.");
      const missing = await other.client.json<{ missing: string[] }>("POST", ["v1", "contexts", "missing"], {
        json: { digests: (await image.describe()).layers.flatMap((l) => (l.context ? [l.context.digest] : [])) },
      });
      expect(missing.missing).toHaveLength(1);
      const images = await other.client.json<{ images: unknown[] }>("GET", ["v1", "images"]);
      expect(images.images).toEqual([]);
    } finally {
      await runner.stop();
    }
  });
});
