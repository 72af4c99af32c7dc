// The built-in registry with real clients (buildah, skopeo) against `wrangler dev` on loopback:
// multi-layer images, an OCI index, a >150 MB layer pushed in chunks, a resumed upload, a wrong
// digest, a pull by digest after the tag moved, credentials and workspace isolation.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTenant, ok, requireTool, run, type Stack, startStack } from "./registry-harness.ts";
import { noise, OciLayout, pushBlobChunked, putManifest, sha256 } from "./registry-oci.ts";

let stack: Stack;
let acme: { workspace: string; token: string };
let rival: { workspace: string; token: string };
let tmp: string;
const basic = (token: string, user = "x") => `Basic ${Buffer.from(`${user}:${token}`).toString("base64")}`;

function buildah(...args: string[]): Promise<string> {
  return ok("buildah", ["--root", path.join(tmp, "storage"), "--runroot", path.join(tmp, "run"), "--storage-driver", "vfs", ...args]);
}

beforeAll(async () => {
  requireTool("buildah");
  requireTool("skopeo");
  tmp = mkdtempSync(path.join(os.tmpdir(), "kiln-registry-clients-"));
  stack = await startStack();
  acme = await newTenant(stack, "acme");
  rival = await newTenant(stack, "rival");
}, 300_000);

afterAll(async () => {
  await stack?.stop();
  if (tmp) {
    // buildah's vfs storage holds root-owned layers; `buildah rm` first keeps rmSync simple.
    spawnSync("buildah", [
      "--root",
      path.join(tmp, "storage"),
      "--runroot",
      path.join(tmp, "run"),
      "--storage-driver",
      "vfs",
      "rm",
      "--all",
    ]);
    rmSync(tmp, { recursive: true, force: true });
  }
}, 60_000);

describe("registry with real clients", { timeout: 600_000 }, () => {
  it("buildah pushes and pulls a multi-layer image; skopeo reads it back byte for byte", async () => {
    const files = path.join(tmp, "files");
    let from = "scratch";
    for (let i = 0; i < 3; i++) {
      const dir = path.join(files, String(i));
      spawnSync("mkdir", ["-p", dir]);
      spawnSync("sh", ["-c", `head -c ${(i + 1) * 1_000_000} /dev/urandom > ${dir}/layer-${i}.bin`]);
      const container = (await buildah("from", from)).trim();
      await buildah("copy", container, path.join(dir, `layer-${i}.bin`), `/data/layer-${i}.bin`);
      await buildah("commit", "--format", "oci", container, `localhost/multi:${i}`);
      await buildah("rm", container);
      from = `localhost/multi:${i}`;
    }
    await buildah("push", "--tls-verify=false", "--creds", `x:${acme.token}`, "localhost/multi:2", `docker://${stack.host}/acme/multi:v1`);
    const inspected = JSON.parse(
      await ok("skopeo", ["inspect", "--tls-verify=false", "--creds", `x:${acme.token}`, `docker://${stack.host}/acme/multi:v1`]),
    );
    expect(inspected.Layers).toHaveLength(3);
    await buildah("rmi", "--all", "--force");
    await buildah("pull", "--tls-verify=false", "--creds", `x:${acme.token}`, `docker://${stack.host}/acme/multi:v1`);
    const images = await buildah("images", "--format", "{{.Name}}:{{.Tag}}");
    expect(images).toContain(`${stack.host}/acme/multi:v1`);
    const out = path.join(tmp, "multi-oci");
    await ok("skopeo", [
      "copy",
      "--src-tls-verify=false",
      "--src-creds",
      `x:${acme.token}`,
      `docker://${stack.host}/acme/multi:v1`,
      `oci:${out}:v1`,
    ]);
    const index = JSON.parse(readFileSync(path.join(out, "index.json"), "utf8"));
    const manifest = JSON.parse(readFileSync(path.join(out, "blobs/sha256", index.manifests[0].digest.slice(7)), "utf8"));
    for (const layer of manifest.layers) {
      const bytes = readFileSync(path.join(out, "blobs/sha256", layer.digest.slice(7)));
      expect(sha256(bytes)).toBe(layer.digest);
    }
  });

  it("skopeo copies an OCI index (two platforms) in and out unchanged", async () => {
    const layout = new OciLayout(path.join(tmp, "index-src"));
    const amd = layout.image([200_000], 11, "amd64");
    const arm = layout.image([300_000], 12, "arm64");
    const index = layout.index([amd.manifest, arm.manifest]);
    layout.tag(index, "v1");
    const creds = `x:${acme.token}`;
    await ok("skopeo", [
      "copy",
      "--all",
      "--dest-tls-verify=false",
      "--dest-creds",
      creds,
      `oci:${layout.dir}:v1`,
      `docker://${stack.host}/acme/multiarch:v1`,
    ]);
    const raw = JSON.parse(
      await ok("skopeo", ["inspect", "--raw", "--tls-verify=false", "--creds", creds, `docker://${stack.host}/acme/multiarch:v1`]),
    );
    expect(raw.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(raw.manifests.map((m: { digest: string }) => m.digest)).toEqual([amd.manifest.digest, arm.manifest.digest]);
    const head = await fetch(`${stack.url}/v2/acme/multiarch/manifests/v1`, {
      method: "HEAD",
      headers: { authorization: basic(acme.token) },
    });
    expect(head.headers.get("docker-content-digest")).toBe(index.digest);
    const out = path.join(tmp, "index-out");
    await ok("skopeo", [
      "copy",
      "--all",
      "--src-tls-verify=false",
      "--src-creds",
      creds,
      `docker://${stack.host}/acme/multiarch@${index.digest}`,
      `oci:${out}:v1`,
    ]);
    expect(JSON.parse(readFileSync(path.join(out, "index.json"), "utf8")).manifests[0].digest).toBe(index.digest);
  });

  it("pushes a 160 MB layer in chunks (each request under 100 MB) and skopeo pulls it intact", async () => {
    const layout = new OciLayout(path.join(tmp, "big-src"));
    const image = layout.image([160 * 1024 * 1024], 21);
    const auth = basic(acme.token);
    const layer = image.layerBytes[0]!;
    const pushed = await pushBlobChunked(stack.url, "acme/big", auth, layer, 60 * 1024 * 1024);
    expect(pushed.status, pushed.body).toBe(201);
    expect(pushed.patches.length).toBe(3);
    expect(Math.max(...pushed.patches)).toBeLessThan(100 * 1000 * 1000);
    const manifest = JSON.parse(readFileSync(path.join(layout.dir, "blobs/sha256", image.manifest.digest.slice(7)), "utf8"));
    const config = readFileSync(path.join(layout.dir, "blobs/sha256", manifest.config.digest.slice(7)));
    expect((await pushBlobChunked(stack.url, "acme/big", auth, config, 1024)).status).toBe(201);
    const put = await putManifest(
      stack.url,
      "acme/big",
      "v1",
      auth,
      manifest.mediaType,
      readFileSync(path.join(layout.dir, "blobs/sha256", image.manifest.digest.slice(7))),
    );
    expect(put.status, await put.text()).toBe(201);
    const out = path.join(tmp, "big-out");
    await ok("skopeo", [
      "copy",
      "--src-tls-verify=false",
      "--src-creds",
      `x:${acme.token}`,
      `docker://${stack.host}/acme/big:v1`,
      `oci:${out}:v1`,
    ]);
    expect(sha256(readFileSync(path.join(out, "blobs/sha256", image.layers[0]!.digest.slice(7))))).toBe(image.layers[0]!.digest);
  });

  it("resumes an upload after a PATCH is cut off mid-body", async () => {
    const auth = basic(acme.token);
    const data = noise(40 * 1024 * 1024 + 17, 31);
    const digest = sha256(data);
    const start = await fetch(`${stack.url}/v2/acme/resume/blobs/uploads/`, { method: "POST", headers: { authorization: auth } });
    const location = new URL(start.headers.get("location")!, stack.url).toString();
    // A body that sends 20 MiB and then fails, as a dropped connection does.
    let sent = 0;
    const broken = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 20 * 1024 * 1024) return controller.error(new Error("connection dropped"));
        controller.enqueue(data.subarray(sent, sent + 1024 * 1024));
        sent += 1024 * 1024;
      },
    });
    await fetch(location, { method: "PATCH", headers: { authorization: auth }, body: broken, duplex: "half" } as RequestInit).catch(
      () => undefined,
    );
    let status: Response | undefined;
    for (let i = 0; i < 50; i++) {
      status = await fetch(location, { headers: { authorization: auth } });
      if (status.status === 204) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status!.status).toBe(204);
    // "0-0" is distribution's (and our) answer for an empty upload: no multiple of 8 MiB is 1 byte.
    const range = status!.headers.get("range")!;
    const kept = range === "0-0" ? 0 : Number(range.split("-")[1]) + 1;
    console.log(`resume: ${kept} bytes kept of the ${sent} sent before the drop`);
    expect(kept % (8 * 1024 * 1024)).toBe(0);
    expect(kept).toBeLessThanOrEqual(20 * 1024 * 1024);
    // The dropped request may still be storing its last part: a 416 names the new offset.
    let offset = kept;
    let patch: Response | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      patch = await fetch(location, {
        method: "PATCH",
        headers: { authorization: auth, "content-range": `${offset}-${data.byteLength - 1}` },
        body: data.subarray(offset),
      });
      if (patch.status !== 416) break;
      offset = Number(patch.headers.get("range")!.split("-")[1]) + 1;
    }
    expect(patch!.status).toBe(202);
    const done = await fetch(`${location}?digest=${digest}`, { method: "PUT", headers: { authorization: auth } });
    expect(done.status, await done.text()).toBe(201);
    const blob = await fetch(`${stack.url}/v2/acme/resume/blobs/${digest}`, { headers: { authorization: auth } });
    expect(
      createHash("sha256")
        .update(Buffer.from(await blob.arrayBuffer()))
        .digest("hex"),
    ).toBe(digest.slice(7));
  });

  it("rejects a wrong digest and keeps nothing", async () => {
    const auth = basic(acme.token);
    const data = noise(9 * 1024 * 1024, 41);
    const wrong = sha256(Buffer.from("something else"));
    const chunked = await pushBlobChunked(stack.url, "acme/wrong", auth, data, 5 * 1024 * 1024, wrong);
    expect(chunked.status).toBe(400);
    expect(JSON.parse(chunked.body).errors[0].code).toBe("DIGEST_INVALID");
    const mono = await fetch(`${stack.url}/v2/acme/wrong/blobs/uploads/?digest=${wrong}`, {
      method: "POST",
      headers: { authorization: auth, "content-length": String(data.byteLength) },
      body: data,
    });
    expect(mono.status).toBe(400);
    for (const digest of [wrong, sha256(data)]) {
      expect((await fetch(`${stack.url}/v2/acme/wrong/blobs/${digest}`, { method: "HEAD", headers: { authorization: auth } })).status).toBe(
        404,
      );
    }
  });

  it("pulls by digest after the tag moved", async () => {
    const creds = `x:${acme.token}`;
    const first = new OciLayout(path.join(tmp, "tag-a"));
    const a = first.image([100_000], 51);
    first.tag(a.manifest, "v1");
    const second = new OciLayout(path.join(tmp, "tag-b"));
    const b = second.image([100_000], 52);
    second.tag(b.manifest, "v1");
    await ok("skopeo", [
      "copy",
      "--dest-tls-verify=false",
      "--dest-creds",
      creds,
      `oci:${first.dir}:v1`,
      `docker://${stack.host}/acme/moving:v1`,
    ]);
    await ok("skopeo", [
      "copy",
      "--dest-tls-verify=false",
      "--dest-creds",
      creds,
      `oci:${second.dir}:v1`,
      `docker://${stack.host}/acme/moving:v1`,
    ]);
    const now = JSON.parse(
      await ok("skopeo", ["inspect", "--raw", "--tls-verify=false", "--creds", creds, `docker://${stack.host}/acme/moving:v1`]),
    );
    expect(now.layers[0].digest).toBe(b.layers[0]!.digest);
    const old = path.join(tmp, "tag-old");
    await ok("skopeo", [
      "copy",
      "--src-tls-verify=false",
      "--src-creds",
      creds,
      `docker://${stack.host}/acme/moving@${a.manifest.digest}`,
      `oci:${old}:old`,
    ]);
    expect(sha256(readFileSync(path.join(old, "blobs/sha256", a.layers[0]!.digest.slice(7))))).toBe(a.layers[0]!.digest);
  });

  it("answers missing and wrong credentials with 401 and a Bearer challenge", async () => {
    const bare = await fetch(`${stack.url}/v2/`);
    expect(bare.status).toBe(401);
    expect(bare.headers.get("www-authenticate")).toBe(`Bearer realm="${stack.url}/v2/token",service="kiln"`);
    const scoped = await fetch(`${stack.url}/v2/acme/multi/manifests/v1`);
    expect(scoped.status).toBe(401);
    expect(scoped.headers.get("www-authenticate")).toContain('scope="repository:acme/multi:pull"');
    expect(((await scoped.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("UNAUTHORIZED");
    const wrong = await fetch(`${stack.url}/v2/acme/multi/manifests/v1`, {
      headers: { authorization: basic("kiln_api_wrongwrongwrongwrongwrongwrong123456") },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toMatch(/^Bearer realm=/);
    const token = await fetch(`${stack.url}/v2/token?service=kiln&scope=repository:acme/multi:pull`, {
      headers: { authorization: basic("not-a-token") },
    });
    expect(token.status).toBe(401);
    const denied = await run("skopeo", ["inspect", "--tls-verify=false", `docker://${stack.host}/acme/multi:v1`]);
    expect(denied.status).not.toBe(0);
    expect(denied.stderr.toLowerCase()).toMatch(/unauthorized|authentication required/);
  });

  it("keeps one workspace's private repositories from another, and serves public ones to anyone", async () => {
    const stolen = await run("skopeo", [
      "inspect",
      "--tls-verify=false",
      "--creds",
      `x:${rival.token}`,
      `docker://${stack.host}/acme/multi:v1`,
    ]);
    expect(stolen.status).not.toBe(0);
    const direct = await fetch(`${stack.url}/v2/acme/multi/manifests/v1`, { headers: { authorization: basic(rival.token) } });
    expect(direct.status).toBe(403);
    expect(((await direct.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("DENIED");
    const push = await run("skopeo", [
      "copy",
      "--dest-tls-verify=false",
      "--dest-creds",
      `x:${rival.token}`,
      `oci:${path.join(tmp, "tag-a")}:v1`,
      `docker://${stack.host}/acme/hijack:v1`,
    ]);
    expect(push.status).not.toBe(0);
    const visibility = await fetch(`${stack.url}/v1/registry/repositories`, {
      method: "PUT",
      headers: { authorization: `Bearer ${acme.token}`, "content-type": "application/json" },
      body: JSON.stringify({ repository: "acme/moving", public: true }),
    });
    expect(visibility.status).toBe(200);
    const anonymous = JSON.parse(
      await ok("skopeo", ["inspect", "--raw", "--tls-verify=false", "--no-creds", `docker://${stack.host}/acme/moving:v1`]),
    );
    expect(anonymous.schemaVersion).toBe(2);
    const rivalReadsPublic = await run("skopeo", [
      "inspect",
      "--raw",
      "--tls-verify=false",
      "--creds",
      `x:${rival.token}`,
      `docker://${stack.host}/acme/moving:v1`,
    ]);
    expect(rivalReadsPublic.status).toBe(0);
  });
});
