// End to end on the real stack, busybox base: `image.build({ tag: "app:v1" })` makes
// `<host>/<workspace>/app:v1` a real OCI tag of the built-in registry that skopeo inspects and
// buildah pulls; moving the tag (`PUT /v1/tags`) repoints it and the old digest stays pullable.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import { Image } from "../../sdk/src/index.ts";
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

let stack: StackInfo;
let tenant: Tenant;
let runner: LocalRunner;
let base: string;
let buildah: Buildah;

beforeAll(async () => {
  requireE2eTools("buildah", "busybox", "skopeo");
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "e2e-tags");
  buildah = await privateBuildah();
  [runner, base] = await Promise.all([
    startLocalRunner(stack, tenant, { concurrency: 2 }),
    busyboxRootfs().then((rootfs) => pushBaseImage(stack, tenant, rootfs, "busybox:1")),
  ]);
}, 600_000);

afterAll(async () => {
  await runner?.stop();
  buildah?.dispose();
}, 120_000);

function skopeo(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("skopeo", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`skopeo ${args.join(" ")} exited ${code}:\n${err}`))));
  });
}

const inspect = async (reference: string) =>
  JSON.parse(await skopeo("inspect", "--tls-verify=false", "--creds", `x:${tenant.token}`, `docker://${reference}`)) as { Digest: string };

type TagView = { name: string; imageId: string; reference: string | null };

describe("Kiln tags are OCI tags of the built-in registry", { timeout: 600_000 }, () => {
  it("build({ tag }) publishes NAME:TAG; moving the tag repoints it; the old digest stays pullable", async () => {
    const marker = `tags-${Date.now()}`;
    const first = await Image.fromRegistry(base)
      .runCommands(`echo ${marker} one > /marker`)
      .build({ client: tenant.client, tag: "app:v1", logs: false });
    const tagged = `${stack.host}/${tenant.workspace}/app:v1`;
    const tag = await tenant.client.json<TagView>("GET", ["v1", "tags", "app:v1"]);
    expect(tag).toMatchObject({ imageId: first.imageId, reference: tagged });

    expect((await inspect(tagged)).Digest).toBe(first.digest);
    await buildah.run("pull", "--tls-verify=false", "--creds", `x:${tenant.token}`, tagged);
    expect(await buildah.run("inspect", "--format", "{{.FromImageDigest}}", tagged)).toContain(first.digest!);

    const second = await Image.fromRegistry(base).runCommands(`echo ${marker} two > /marker`).build({ client: tenant.client, logs: false });
    await tenant.client.json("PUT", ["v1", "tags", "app:v1"], { json: { imageId: second.imageId } });
    expect((await inspect(tagged)).Digest).toBe(second.digest);
    const old = `${stack.host}/${tenant.workspace}/app@${first.digest}`;
    expect((await inspect(old)).Digest).toBe(first.digest);
    await buildah.run("pull", "--tls-verify=false", "--creds", `x:${tenant.token}`, old);

    await tenant.client.json("DELETE", ["v1", "tags", "app:v1"]);
    await expect(inspect(tagged)).rejects.toThrow(/manifest unknown|not found/i);
    expect((await inspect(old)).Digest).toBe(first.digest);
  });
});
