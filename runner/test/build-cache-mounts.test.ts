// Modal's `volumes` as build cache mounts, built for real with buildah: a file a RUN step
// writes into `runCommands(..., { volumes })`'s cache mount is there for the next build of the
// same workspace, never for another workspace's build (each workspace's storage has its own
// TMPDIR, where buildah keeps cache mounts), and never in the image.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Image, Volume } from "../../sdk/src/index.ts";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { imageContents } from "./helpers/inspect.ts";
import { dispatch, jobFromImage } from "./helpers/jobs.ts";

const harness = useBuildHarness({ base: "busybox" });

const volumes = { "/cache": Volume.fromName("shared-cache") };

/** Builds `image` as a job of `workspaceId` and returns the files of its top layer image. */
async function build(image: Image, workspaceId: string) {
  const { orchestrator } = harness;
  const job = { ...(await jobFromImage(image, { orchestrator, registryHost: harness.registry.host })), workspaceId };
  expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
  expect(await orchestrator.final()).toMatchObject({ type: "succeeded", jobId: job.jobId });
  return (await imageContents(job.layers.at(-1)!.target)).files;
}

describe("build cache mounts (runCommands volumes)", () => {
  const marker = `cached-${randomUUID()}`;
  const base = () => Image.fromRegistry(harness.baseRef);

  it("keeps what a step writes to the cache out of the image", async () => {
    const files = await build(base().runCommands(`echo ${marker} > /cache/entry && echo writer > /wrote`, { volumes }), "ws_cache_a");
    expect(files.get("/wrote")?.data.toString()).toBe("writer\n");
    expect(files.has("/cache/entry")).toBe(false);
    expect(
      [...files.values()].some((f) => f.data.includes(marker)),
      "the marker is in no file of the image",
    ).toBe(false);
    // The contents live in the workspace's own TMPDIR.
    const tmp = harness.workspaceStorage("ws_cache_a").tmpDir;
    expect(existsSync(path.join(tmp, "buildah-cache", "shared-cache", "entry"))).toBe(true);
  });

  const reader = (n: string) => base().runCommands(`(cat /cache/entry || echo none) > /seen-${n}`, { volumes });

  it("shows the cache to the next build of the same workspace", async () => {
    const files = await build(reader("a"), "ws_cache_a");
    expect(files.get("/seen-a")?.data.toString()).toBe(`${marker}\n`);
  });

  it("never shows it to another workspace's build", async () => {
    const files = await build(reader("b"), "ws_cache_b");
    expect(files.get("/seen-b")?.data.toString()).toBe("none\n");
    expect(existsSync(path.join(harness.workspaceStorage("ws_cache_b").tmpDir, "buildah-cache", "shared-cache", "entry"))).toBe(false);
  });
});
