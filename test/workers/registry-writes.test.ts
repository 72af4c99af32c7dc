// What a registry write costs, without weakening it (docs/registry.md "Performance"): a monolithic
// blob is verified by R2 against its digest while its owner is looked up, and a manifest PUT checks
// its owner, its references' sizes and presence, and touches its blobs in one D1 batch.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { blobKey } from "../../workers/registry/blob-writer.ts";
import { ADMIN, bytes, newTenant, sha256Digest } from "./periphery-helpers.ts";

const BASE = "https://kiln.test";
const basic = (token: string) => `Basic ${btoa(`x:${token}`)}`;
const req = (method: string, path: string, auth: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
  SELF.fetch(`${BASE}${path}`, { ...init, method, headers: { authorization: auth, ...init.headers } });
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

async function postMonolithic(repo: string, auth: string, data: Uint8Array, digest: string): Promise<Response> {
  return req("POST", `/v2/${repo}/blobs/uploads/?digest=${digest}`, auth, {
    body: data,
    headers: { "content-length": String(data.byteLength) },
  });
}

const blobRow = (digest: string) =>
  env.DB.prepare("SELECT size_bytes, r2_key, touched_at FROM registry_blobs WHERE digest = ?")
    .bind(digest)
    .first<{ size_bytes: number; r2_key: string; touched_at: number }>();

function manifestOf(config: { digest: string; size: number }, layers: { digest: string; size: number }[]): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: layers.map((layer) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer })),
  });
}

describe("monolithic blob writes", () => {
  it("stores a blob of several MiB byte for byte at its content-addressed key, verified", async () => {
    const { workspace, token } = await newTenant(["images:read", "images:write"]);
    const repo = `${workspace.name}/app`;
    const data = bytes(2.5 * 1024 * 1024 + 7, 61);
    const digest = await sha256Digest(data);
    const put = await postMonolithic(repo, basic(token), data, digest);
    expect(put.status, await put.clone().text()).toBe(201);
    expect(put.headers.get("docker-content-digest")).toBe(digest);
    const object = await env.REGISTRY.get(blobKey(digest));
    expect(await sha256Digest(new Uint8Array(await object!.arrayBuffer()))).toBe(digest);
    expect(await blobRow(digest)).toMatchObject({ size_bytes: data.byteLength, r2_key: blobKey(digest) });
    const read = await req("GET", `/v2/${repo}/blobs/${digest}`, basic(token));
    const served = new Uint8Array(await read.arrayBuffer());
    // Compared by length and digest: a deep equality of MiBs of bytes is slow in the test runner.
    expect(served.byteLength).toBe(data.byteLength);
    expect(await sha256Digest(served)).toBe(digest);
  });

  it("stores nothing when the body does not match its digest", async () => {
    const { workspace, token } = await newTenant(["images:read", "images:write"]);
    const data = bytes(1.5 * 1024 * 1024, 62);
    const claimed = await sha256Digest(bytes(16, 63));
    const put = await postMonolithic(`${workspace.name}/app`, basic(token), data, claimed);
    expect(put.status).toBe(400);
    expect(((await put.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("DIGEST_INVALID");
    expect(await env.REGISTRY.head(blobKey(claimed))).toBeNull();
    expect(await blobRow(claimed)).toBeNull();
  });

  it("answers NAME_UNKNOWN for a namespace no workspace owns, and records no blob", async () => {
    const data = bytes(4096, 64);
    const digest = await sha256Digest(data);
    const put = await postMonolithic(`no-such-workspace-${crypto.randomUUID().slice(0, 8)}/app`, basic(ADMIN), data, digest);
    expect(put.status).toBe(404);
    expect(((await put.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("NAME_UNKNOWN");
    expect(await blobRow(digest)).toBeNull();
  });
});

describe("manifest writes", () => {
  it("checks presence and sizes of its references, and touches its blobs, before storing", async () => {
    const { workspace, token } = await newTenant(["images:read", "images:write"]);
    const repo = `${workspace.name}/app`;
    const auth = basic(token);
    const config = new TextEncoder().encode('{"architecture":"amd64","os":"linux"}');
    const layer = bytes(3000, 65);
    const configDigest = await sha256Digest(config);
    const layerDigest = await sha256Digest(layer);
    expect((await postMonolithic(repo, auth, config, configDigest)).status).toBe(201);
    expect((await postMonolithic(repo, auth, layer, layerDigest)).status).toBe(201);
    await env.DB.prepare("UPDATE registry_blobs SET touched_at = 0 WHERE digest IN (?, ?)").bind(configDigest, layerDigest).run();
    const put = (body: string, tag: string) =>
      req("PUT", `/v2/${repo}/manifests/${tag}`, auth, { body, headers: { "content-type": OCI_MANIFEST } });
    const codeOf = async (response: Response) => ((await response.json()) as { errors: { code: string; detail: unknown }[] }).errors[0]!;

    const absent = `sha256:${"7".repeat(64)}`;
    const missing = await put(manifestOf({ digest: configDigest, size: config.byteLength }, [{ digest: absent, size: 1 }]), "v0");
    expect(missing.status).toBe(400);
    expect(await codeOf(missing)).toMatchObject({ code: "MANIFEST_BLOB_UNKNOWN", detail: { digest: absent } });

    const wrongSize = await put(manifestOf({ digest: configDigest, size: config.byteLength }, [{ digest: layerDigest, size: 999 }]), "v0");
    expect(wrongSize.status).toBe(400);
    expect(await codeOf(wrongSize)).toMatchObject({
      code: "MANIFEST_INVALID",
      detail: { digest: layerDigest, declared: 999, stored: 3000 },
    });

    const before = Date.now();
    const stored = await put(manifestOf({ digest: configDigest, size: config.byteLength }, [{ digest: layerDigest, size: 3000 }]), "v1");
    expect(stored.status, await stored.clone().text()).toBe(201);
    for (const digest of [configDigest, layerDigest]) expect((await blobRow(digest))!.touched_at).toBeGreaterThanOrEqual(before);
    const read = await req("GET", `/v2/${repo}/manifests/v1`, auth);
    expect(read.headers.get("docker-content-digest")).toBe(stored.headers.get("docker-content-digest"));

    // Another workspace's repository holds none of these blobs: its push is refused the same way.
    const other = await newTenant(["images:read", "images:write"]);
    const theirs = await req("PUT", `/v2/${other.workspace.name}/app/manifests/v1`, basic(other.token), {
      body: manifestOf({ digest: configDigest, size: config.byteLength }, [{ digest: layerDigest, size: 3000 }]),
      headers: { "content-type": OCI_MANIFEST },
    });
    expect(theirs.status).toBe(400);
    expect((await codeOf(theirs)).code).toBe("MANIFEST_BLOB_UNKNOWN");
  });
});
