// End to end on the real stack (decision 0023): a two-platform build of a busybox image with a
// `runCommands` step, FROM a two-platform base index in the built-in registry. One runner builds
// only linux/amd64; the other declares linux/arm64 by emulation (QEMU binfmt_misc, as its
// /v1/capabilities reports). The result is an OCI index with both platforms; each platform's
// image says x86_64 and aarch64 to `uname -m`; a resubmission is a cache hit for both; the
// amd64-only fleet gets no arm64 job; a platform no fleet offers is refused before any upload.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Image, InvalidError } from "../../sdk/src/index.ts";
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

beforeAll(async () => {
  requireE2eTools("buildah", "busybox", "skopeo", "qemu-aarch64-static");
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "e2e-platforms");
  work = mkdtempSync(path.join(os.tmpdir(), "kiln-e2e-platforms-"));
  [amdOnly, emulating, base, buildah] = await Promise.all([
    startLocalRunner(stack, tenant, { name: "amd64-only" }),
    startLocalRunner(stack, tenant, { name: "emulating", platforms: { native: ["linux/amd64"], emulated: ["linux/arm64"] } }),
    pushMultiArchBusybox(stack, tenant, "busybox-multi:1"),
    privateBuildah(),
  ]);
}, 600_000);

afterAll(async () => {
  await Promise.all([amdOnly?.stop(), emulating?.stop()]);
  buildah?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
}, 120_000);

const creds = () => `e2e:${tenant.token}`;
type BuildView = { fleetId: string | null };
type IndexView = { status: string; digest: string; platforms: { platform: string; imageId: string; buildId: string | null }[] };

function skopeoRaw(reference: string): {
  mediaType: string;
  manifests: { digest: string; platform: { os: string; architecture: string } }[];
} {
  const r = spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", "--creds", creds(), `docker://${reference}`], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`skopeo inspect failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function unameIn(reference: string, platform: string): Promise<string> {
  const container = (
    await buildah.run("from", "--platform", platform, "--tls-verify=false", "--creds", creds(), `docker://${reference}`)
  ).trim();
  return (await buildah.run("run", "--isolation", "chroot", container, "--", "sh", "-c", "uname -m; cat /marker")).trim();
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
