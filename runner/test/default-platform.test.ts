// A layer without a platform is built for the default one (linux/amd64), and the runner says so
// to buildah. Without `--platform`, buildah's `--pull=missing` takes whatever image the
// workspace's storage holds under the base's name: after an arm64 build of the same base (its
// pull leaves the name on the arm64 image), a default build ran on the arm64 base under QEMU.
// Real buildah, a real two-platform index; the arm64 RUN would need QEMU, the amd64 one does not.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { Image } from "../../sdk/src/index.ts";
import { arm64BusyboxRootfs, busyboxRootfs, pushMultiPlatformImage } from "./helpers/base-images.ts";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { imageContents } from "./helpers/inspect.ts";
import { dispatch, jobFromImage } from "./helpers/jobs.ts";

let twoPlatformBase = "";
const harness = useBuildHarness({
  base: "busybox",
  prepare: async (h) => {
    twoPlatformBase = await pushMultiPlatformImage(
      { "linux/amd64": await busyboxRootfs(), "linux/arm64": await arm64BusyboxRootfs() },
      `${h.registry.host}/base/busybox-two-platforms:1`,
      h.storage,
    );
    return {};
  },
});

describe("the default platform", () => {
  const workspaceId = "ws_default_platform";

  /** Runs `image` as a job of the workspace (each test has its own orchestrator) and returns its top layer's target. */
  async function build(image: Image): Promise<string> {
    const { orchestrator } = harness;
    const job = { ...(await jobFromImage(image, { orchestrator, registryHost: harness.registry.host })), workspaceId };
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    expect(await orchestrator.final()).toMatchObject({ type: "succeeded", jobId: job.jobId });
    return job.layers.at(-1)!.target;
  }

  it("leaves the base's name on its arm64 image after an arm64 pull into the workspace's storage", async () => {
    // A first job lays the workspace's storage out as the runner does.
    await build(Image.fromRegistry(harness.baseRef));
    const storage = harness.workspaceStorage(workspaceId);
    const buildah = (...args: string[]) =>
      execFileSync("buildah", ["--root", storage.graphRoot, "--runroot", storage.runRoot, "--storage-driver", "vfs", ...args], {
        encoding: "utf8",
      });
    // What an arm64 build of the same base leaves behind.
    buildah("pull", "--quiet", "--platform", "linux/arm64", "--tls-verify=false", twoPlatformBase);
    expect(buildah("inspect", "--type", "image", "--format", "{{.OCIv1.Architecture}}", twoPlatformBase).trim()).toBe("arm64");
  }, 300_000);

  it("then builds a layer without a platform from the base's amd64 image", async () => {
    const target = await build(Image.fromRegistry(twoPlatformBase).runCommands("uname -m > /arch"));
    const { files } = await imageContents(target);
    expect(files.get("/arch")?.data.toString()).toBe("x86_64\n");
  }, 300_000);
});
