// End to end on a real stack of its own (a 1 s GC grace period, `REGISTRY_GC_GRACE_SECONDS`):
// two busybox images sharing a base layer, tagged app:a and app:b; `kiln images rm app:a` (the
// real CLI) makes app:a unpullable while app:b stays pullable by tag and digest; after the grace
// period the cron's GC (miniflare's `GET /cdn-cgi/local/scheduled`) removes app:a's own layer and config blobs from the
// registry while the shared ones and everything app:b needs remain.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import { Image } from "../../sdk/src/index.ts";
import {
  type LocalRunner,
  newWorkspace,
  pushBaseImage,
  requireE2eTools,
  type StackInfo,
  stackInfo,
  startLocalRunner,
  type Tenant,
} from "./e2e-stack.ts";
import { type Stack, startStack } from "./registry-harness.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const KILN = path.join(ROOT, "sdk/dist/cli/bin.js");
const GRACE_SECONDS = 1;

let stack: Stack;
let info: StackInfo;
let tenant: Tenant;
let runner: LocalRunner;
let base: string;
let work: string;

beforeAll(async () => {
  requireE2eTools("buildah", "busybox", "skopeo");
  stack = await startStack({
    transformConfig: (toml) => toml.replace(/^REGISTRY_GC_GRACE_SECONDS = .*$/m, `REGISTRY_GC_GRACE_SECONDS = "${GRACE_SECONDS}"`),
  });
  info = stackInfo(stack);
  tenant = await newWorkspace(info, "e2e-delete");
  work = mkdtempSync(path.join(os.tmpdir(), "kiln-e2e-delete-"));
  [runner, base] = await Promise.all([
    startLocalRunner(info, tenant),
    busyboxRootfs().then((rootfs) => pushBaseImage(info, tenant, rootfs, "busybox:1")),
  ]);
}, 600_000);

afterAll(async () => {
  await runner?.stop();
  await stack?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
}, 120_000);

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: work, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** `kiln --json ...` as a user runs it, with the tenant's credentials as flags and no profile. */
const kiln = (...args: string[]) =>
  run(process.execPath, [KILN, "--json", "--server", info.url, "--token", tenant.token, ...args], {
    ...process.env,
    KILN_CONFIG: path.join(work, "no-profile.toml"),
    NO_COLOR: "1",
  });

/** Copies `reference` out of the registry with skopeo (manifest, config and every layer blob). */
const pull = (reference: string) =>
  run("skopeo", [
    "copy",
    "--quiet",
    "--src-tls-verify=false",
    "--src-creds",
    `x:${tenant.token}`,
    `docker://${reference}`,
    `oci:${mkdtempSync(path.join(work, "pull-"))}:image`,
  ]);

const auth = () => ({ authorization: `Basic ${btoa(`x:${tenant.token}`)}` });

/** The config and layer blob digests of manifest `digest` in `<ws>/layers`. */
async function blobsOf(digest: string): Promise<string[]> {
  const response = await fetch(`${info.url}/v2/${tenant.workspace}/layers/manifests/${digest}`, {
    headers: { ...auth(), accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
  });
  expect(response.status).toBe(200);
  const manifest = (await response.json()) as { config: { digest: string }; layers: { digest: string }[] };
  return [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
}

const blobStatus = async (digest: string) =>
  (await fetch(`${info.url}/v2/${tenant.workspace}/layers/blobs/${digest}`, { method: "HEAD", headers: auth() })).status;

describe("kiln images rm, then the GC", { timeout: 600_000 }, () => {
  it("removes the image and its tag at once, and its own blobs after the grace period, keeping shared ones", async () => {
    const marker = `delete-${Date.now()}`;
    const shared = Image.fromRegistry(base).runCommands(`echo ${marker} shared > /shared`);
    const a = await shared.runCommands(`echo ${marker} a > /a`).build({ client: tenant.client, tag: "app:a", logs: false });
    const b = await shared.runCommands(`echo ${marker} b > /b`).build({ client: tenant.client, tag: "app:b", logs: false });
    const [aBlobs, bBlobs] = await Promise.all([blobsOf(a.digest!), blobsOf(b.digest!)]);
    const aOnly = aBlobs.filter((d) => !bBlobs.includes(d));
    const sharedBlobs = aBlobs.filter((d) => bBlobs.includes(d));
    expect(aOnly.length).toBe(2); // a's config and its own layer
    expect(sharedBlobs.length).toBeGreaterThanOrEqual(2); // busybox and the shared layer
    const repo = `${info.host}/${tenant.workspace}/app`;
    expect((await pull(`${repo}:a`)).code).toBe(0);

    const removed = await kiln("images", "rm", "app:a");
    expect(removed.code, removed.stderr).toBe(0);
    expect(JSON.parse(removed.stdout)).toEqual({ deleted: [{ id: a.imageId, deleted: true, tags: ["app:a"] }] });
    const again = await kiln("images", "rm", a.imageId!);
    expect(again.code).not.toBe(0);
    expect(JSON.stringify(JSON.parse(again.stdout))).toContain(`${a.imageId}: Image '${a.imageId}' not found.`);

    const gone = await pull(`${repo}:a`);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/manifest unknown|not found/i);
    expect((await pull(`${repo}:b`)).code).toBe(0);
    expect((await pull(`${repo}@${b.digest}`)).code).toBe(0);
    for (const digest of aBlobs) expect(await blobStatus(digest)).toBe(200);

    // Past the grace period, the cron's handler runs the GC and answers when it is done.
    await sleep(GRACE_SECONDS * 1000 + 1500);
    const cron = await fetch(`${info.url}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("17 3 * * *")}`);
    expect(cron.status).toBe(200);
    for (const digest of aOnly) expect(await blobStatus(digest)).toBe(404);
    for (const digest of sharedBlobs) expect(await blobStatus(digest)).toBe(200);
    expect((await pull(`${repo}:b`)).code).toBe(0);
    expect((await pull(`${repo}@${b.digest}`)).code).toBe(0);
    expect((await pull(`${info.host}/${tenant.workspace}/layers@${a.digest}`)).code).not.toBe(0);
    // The shared base layer is still usable: a new image on it builds.
    const c = await shared.runCommands(`echo ${marker} c > /c`).build({ client: tenant.client, logs: false });
    const view = await tenant.client.json<{ layers: { status: string }[] }>("GET", ["v1", "images", c.imageId!]);
    expect(view.layers.every((l) => l.status === "succeeded")).toBe(true);
  });
});
