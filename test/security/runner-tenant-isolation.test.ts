// Tenant isolation on a runner that serves two workspaces (issue "Tenant isolation and trust",
// item 1), through the real stack: workspace A pushes a private base image and builds on it,
// so the runner has pulled it; workspace B, whose credentials cannot read it, then builds
// `FROM` that image, and `FROM` A's built layer, on the same runner. Both must fail on the
// pull, naming the refusal, and nothing of A's may reach B: not its files, not its images.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../runner/src/config.ts";
import { runnerPaths } from "../../runner/src/state-dirs.ts";
import { workspaceLocation } from "../../runner/src/workspace-storage.ts";
import { busyboxRootfs, pushRootfsImage, testStorage } from "../../runner/test/helpers/base-images.ts";
import { Image, ImageBuildError } from "../../sdk/src/index.ts";
import { newWorkspace, requireE2eTools, type StackInfo, sharedStack, type Tenant } from "../node/e2e-stack.ts";
import { type RunnerProcess, type RunnerState, registerFleet, runnerState, spawnRunner } from "./runner-process.ts";

const MARKER = `a-private-${Math.random().toString(36).slice(2)}`;
let stack: StackInfo;
let a: Tenant;
let b: Tenant;
let state: RunnerState;
let runner: RunnerProcess;
let privateBase: string;
let rootfs: string;
/** Workspace ids, as the orchestrator puts them in jobs. */
const ids = new Map<Tenant, string>();

beforeAll(async () => {
  requireE2eTools("buildah", "busybox");
  stack = await sharedStack();
  [a, b] = await Promise.all([newWorkspace(stack, "iso-a"), newWorkspace(stack, "iso-b")]);
  for (const tenant of [a, b]) {
    const who = await tenant.client.json<{ workspace: { id: string } | null }>("GET", ["v1", "whoami"]);
    ids.set(tenant, who.workspace!.id);
  }
  state = runnerState();
  runner = await spawnRunner(state);
  // One runner, one signing secret, a fleet of both workspaces: a fleet shared by them.
  await registerFleet(a, runner, "shared-a");
  await registerFleet(b, runner, "shared-b");
  // A's private base: busybox plus a file only A may read.
  rootfs = mkdtempSync(path.join(os.tmpdir(), "kiln-iso-rootfs-"));
  cpSync(await busyboxRootfs(), rootfs, { recursive: true, verbatimSymlinks: true });
  writeFileSync(path.join(rootfs, "a-private.txt"), `${MARKER}\n`);
  privateBase = `${stack.host}/${a.workspace}/privbase:v1`;
  const storage = await testStorage();
  try {
    await pushRootfsImage(rootfs, privateBase, storage, `e2e:${a.token}`);
  } finally {
    spawnSync("buildah", ["--root", storage.root, "--runroot", storage.runRoot, "--storage-driver", "vfs", "rmi", "--all", "--force"]);
    await storage.dispose();
  }
}, 600_000);

afterAll(async () => {
  await runner?.stop();
  state?.dispose();
  if (rootfs) rmSync(rootfs, { recursive: true, force: true });
}, 120_000);

/** B's credentials against the registry: the manifest of `repository:tag` in A's namespace. */
async function pullStatus(tenant: Tenant, repository: string, reference: string): Promise<number> {
  const auth = `Basic ${Buffer.from(`e2e:${tenant.token}`).toString("base64")}`;
  const response = await fetch(`${stack.url}/v2/${a.workspace}/${repository}/manifests/${reference}`, {
    headers: { authorization: auth, accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  return response.status;
}

/** B's build of `image`, which must fail; returns the error. */
async function failedBuild(image: Image): Promise<ImageBuildError> {
  const error = await image.build({ client: b.client, logs: false }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageBuildError);
  return error as ImageBuildError;
}

describe("a runner shared by two workspaces", { timeout: 600_000 }, () => {
  let aLayer: string;

  it("builds A's image on A's private base (the runner now holds that base)", async () => {
    expect(await pullStatus(a, "privbase", "v1")).toBe(200);
    expect([401, 403, 404]).toContain(await pullStatus(b, "privbase", "v1"));
    const built = await Image.fromRegistry(privateBase)
      .runCommands("cat /a-private.txt > /copied.txt")
      .build({ client: a.client, logs: false });
    expect(built.reference).toContain(`/${a.workspace}/`);
    aLayer = built.reference!;
  });

  it("fails B's build FROM A's private base on the pull, and B's log holds none of A's files", async () => {
    const error = await failedBuild(Image.fromRegistry(privateBase).runCommands("cat /a-private.txt; ls /"));
    const text = `${error.message}\n${error.logTail.join("\n")}`;
    expect(text).toMatch(/pull|denied|unauthori[sz]ed|authori[sz]ation/i);
    expect(error.message).toContain(privateBase);
    expect(error.reason).toBe("build");
    expect(text).not.toContain(MARKER);
    expect(await buildLog(error.buildId!)).not.toContain(MARKER);
  });

  it("fails B's build FROM A's built layer image the same way", async () => {
    expect([401, 403, 404]).toContain(await pullStatus(b, "layers", aLayer.split("@")[1]!));
    const error = await failedBuild(Image.fromRegistry(aLayer).runCommands("cat /copied.txt"));
    expect(`${error.message}\n${error.logTail.join("\n")}`).toMatch(/pull|denied|unauthori[sz]ed|authori[sz]ation/i);
    expect(error.reason).toBe("build");
    expect(await buildLog(error.buildId!)).not.toContain(MARKER);
  });

  it("keeps each workspace's images in a storage of its own", () => {
    const paths = runnerPaths(
      resolveConfig({
        webhookSecrets: [runner.secret],
        workDir: state.work,
        cacheDir: state.cache,
        secretsDir: state.secrets,
        storageRoot: state.storage,
      }),
    );
    const images = (tenant: Tenant) => {
      const location = workspaceLocation(paths, ids.get(tenant)!);
      const listing = spawnSync(
        "buildah",
        ["--root", location.graphRoot, "--runroot", location.runRoot, "--storage-driver", "vfs", "images", "--format", "{{.Name}}"],
        { encoding: "utf8" },
      );
      return listing.stdout;
    };
    expect(images(a)).toContain(`${a.workspace}/privbase`);
    expect(images(b)).not.toContain(a.workspace);
  });
});

async function buildLog(buildId: string): Promise<string> {
  let cursor = 0;
  let text = "";
  for (;;) {
    const page = await b.client.json<{ chunks: { data: string }[]; cursor: number; done: boolean }>(
      "GET",
      ["v1", "builds", buildId, "logs"],
      {
        query: { cursor },
      },
    );
    text += page.chunks.map((c) => c.data).join("");
    if (page.done || page.chunks.length === 0) return text;
    cursor = page.cursor;
  }
}
