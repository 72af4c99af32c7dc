// End to end on the real stack (decision 0023), the slow half of the proof: a
// two-platform build of a debootstrapped Debian bookworm image (the arm64 rootfs made by
// `debootstrap --arch=arm64` under QEMU, cached after the first run) with an `aptInstall` and
// a `runCommands` step, on one runner that builds amd64 natively and arm64 by emulation, both
// platforms at once. The index lists both platforms; the installed package runs on each and
// `uname -m` says x86_64 and aarch64; a resubmission is a cache hit for both.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Image } from "../../sdk/src/index.ts";
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
import { pushMultiArchDebian } from "./multi-arch-base.ts";

let stack: StackInfo;
let tenant: Tenant;
let runner: LocalRunner;
let base: string;
let buildah: Buildah;

beforeAll(async () => {
  requireE2eTools("buildah", "skopeo", "debootstrap", "qemu-aarch64-static");
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "e2e-platforms-debian");
  [runner, base, buildah] = await Promise.all([
    startLocalRunner(stack, tenant, { concurrency: 2, platforms: { native: ["linux/amd64"], emulated: ["linux/arm64"] } }),
    pushMultiArchDebian(stack, tenant, "debian-multi:bookworm"),
    privateBuildah(),
  ]);
}, 1_800_000);

// Removing two Debian images' vfs storage (the runner's and the pull's) takes minutes on a busy disk.
afterAll(async () => {
  await runner?.stop();
  buildah?.dispose();
}, 900_000);

const creds = () => `e2e:${tenant.token}`;

describe("a two-platform Debian image with aptInstall", { timeout: 1_800_000 }, () => {
  it("installs and runs the package on each platform, and is cached for both", async () => {
    const marker = `debian-${Date.now()}`;
    const define = () => Image.fromRegistry(base).aptInstall("hello").runCommands(`hello > /hello.txt; echo ${marker} >> /hello.txt`);
    const built = await define().build({ client: tenant.client, platforms: ["linux/amd64", "linux/arm64"], logs: false });
    const raw = spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", "--creds", creds(), `docker://${built.reference}`], {
      encoding: "utf8",
    });
    const index = JSON.parse(raw.stdout) as { manifests: { platform: { architecture: string } }[] };
    expect(index.manifests.map((m) => m.platform.architecture)).toEqual(["amd64", "arm64"]);
    for (const [platform, machine] of [
      ["linux/amd64", "x86_64"],
      ["linux/arm64", "aarch64"],
    ] as const) {
      const container = (
        await buildah.run("from", "--platform", platform, "--tls-verify=false", "--creds", creds(), `docker://${built.reference}`)
      ).trim();
      const out = await buildah.run(
        "run",
        "--isolation",
        "chroot",
        container,
        "--",
        "sh",
        "-c",
        "uname -m; cat /hello.txt; dpkg -s hello | grep Architecture",
      );
      expect(out.trim().split("\n")).toEqual([machine, "Hello, world!", marker, `Architecture: ${platform.split("/")[1]}`]);
    }
    const again = await define().build({ client: tenant.client, platforms: ["linux/amd64", "linux/arm64"], logs: false });
    expect(again.digest).toBe(built.digest);
    const view = await tenant.client.json<{ platforms: { buildId: string | null }[] }>("GET", ["v1", "image-indexes", again.imageId!]);
    expect(view.platforms.map((p) => p.buildId)).toEqual([null, null]);
  });
});
