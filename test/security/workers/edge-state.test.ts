// Security review "Tenant isolation and trust", B 4, 5, 8, 9: claims the edge checks against
// what it stores instead of trusting them. A context's declared size must be its uploaded
// bytes; a re-upload of a stored digest must be those bytes; a manifest's descriptor sizes must
// be the stored blobs'; and only `images:write` decides what is public.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { contextKey } from "../../../workers/contexts/upload-plan.ts";
import { layer, newTenant, ORIGIN, submitImage } from "../../workers/helpers.ts";
import { bytes, call, callJson, insertImage, newTenant as newApiTenant, sha256Digest } from "../../workers/periphery-helpers.ts";

async function putContext(token: string, body: Uint8Array, digest?: string): Promise<Response> {
  return SELF.fetch(`${ORIGIN}/v1/contexts/${digest ?? (await sha256Digest(body))}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-length": String(body.byteLength) },
    body,
  });
}

describe("context sizes", () => {
  it("refuses a layer that declares 999,999,999 bytes for a 5-byte upload, and builds nothing", async () => {
    const t = await newTenant();
    const data = new TextEncoder().encode("hello");
    const digest = await sha256Digest(data);
    expect((await putContext(t.token, data)).status).toBe(201);
    for (const sizeBytes of [999_999_999, 4, 6, 0]) {
      const result = await submitImage(t.token, [layer(["COPY . /app"], { context: { digest, sizeBytes } }, true)]);
      expect(result.status, JSON.stringify(result.body)).toBe(422);
      expect(result.body.error).toMatchObject({
        code: "context_size_mismatch",
        details: { digest, declaredBytes: sizeBytes, storedBytes: 5 },
      });
      expect(result.body.error.message).toMatch(/Declare the manifest's exact size/);
    }
    expect((await callJson<{ images: unknown[] }>("GET", "/v1/images", 200, { token: t.token })).images).toEqual([]);
  });
});

describe("PUT /v1/contexts/<stored digest>", () => {
  it("checks the body against the digest instead of answering 200 to anything", async () => {
    const { token } = await newApiTenant();
    const data = bytes(3000, 21);
    const digest = await sha256Digest(data);
    expect((await putContext(token, data)).status).toBe(201);
    const others = [bytes(3000, 22), bytes(5, 23), new Uint8Array(0), bytes(64 * 1024, 24)];
    for (const other of others) {
      const response = await putContext(token, other, digest);
      expect(response.status).toBe(400);
      expect((await response.json<any>()).error.code).toBe("digest_mismatch");
    }
    const stored = await env.CONTEXTS.get(contextKey(digest));
    expect(new Uint8Array(await stored!.arrayBuffer())).toEqual(data);
    // The same bytes again: 200 with the stored size, never an echo of what the request claims.
    const again = await putContext(token, data, digest);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ digest, sizeBytes: 3000 });
  });
});

describe("manifest descriptor sizes", () => {
  const basic = (token: string) => `Basic ${btoa(`x:${token}`)}`;
  const req = (method: string, path: string, auth: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    SELF.fetch(`${ORIGIN}${path}`, { ...init, method, headers: { authorization: auth, ...init.headers } });

  async function pushBlob(repo: string, auth: string, data: Uint8Array): Promise<string> {
    const digest = await sha256Digest(data);
    const start = await req("POST", `/v2/${repo}/blobs/uploads/`, auth);
    expect(start.status).toBe(202);
    const put = await req("PUT", `${start.headers.get("location")!}?digest=${digest}`, auth, { body: data });
    expect(put.status, await put.clone().text()).toBe(201);
    return digest;
  }

  it("refuses a manifest whose layer or config sizes are not the stored blobs', storing nothing", async () => {
    const { workspace, token } = await newApiTenant(["images:read", "images:write"]);
    const auth = basic(token);
    const repo = `${workspace.name}/app`;
    const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux" }));
    const layerBytes = bytes(1234, 31);
    const configDigest = await pushBlob(repo, auth, config);
    const layerDigest = await pushBlob(repo, auth, layerBytes);
    const manifest = (configSize: number, layerSize: number) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: configSize },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: layerSize }],
      });
    const put = (body: string, tag: string) =>
      req("PUT", `/v2/${repo}/manifests/${tag}`, auth, { body, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } });
    for (const [configSize, layerSize] of [
      [config.byteLength, 999_999_999],
      [config.byteLength, 0],
      [config.byteLength + 1, layerBytes.byteLength],
    ]) {
      const refused = await put(manifest(configSize!, layerSize!), "bad");
      expect(refused.status).toBe(400);
      const body = await refused.json<any>();
      expect(body.errors[0].code).toBe("MANIFEST_INVALID");
      expect(body.errors[0].message).toMatch(/declares \d+ bytes, but the repository holds \d+/);
    }
    expect((await req("GET", `/v2/${repo}/manifests/bad`, auth)).status).toBe(404);
    expect((await put(manifest(config.byteLength, layerBytes.byteLength), "good")).status).toBe(201);
  });
});

describe("visibility needs images:write", () => {
  it("a tags:write-only token cannot make a tag public, nor point a public tag at another image", async () => {
    const owner = await newApiTenant();
    const tagger = await callJson<{ token: string }>("POST", "/v1/tokens", 201, {
      token: owner.token,
      json: { name: "ci tagger", scopes: ["tags:write", "images:read"] },
    });
    const [a, b] = [await insertImage(owner.workspace.id), await insertImage(owner.workspace.id)];
    const put = (name: string, json: unknown, token = tagger.token) => call("PUT", `/v1/tags/${name}`, { token, json });
    // A new public tag, and publishing a private one: refused, nothing stored.
    expect((await put("new", { imageId: a, public: true })).status).toBe(403);
    expect((await call("GET", "/v1/tags/new", { token: owner.token })).status).toBe(404);
    expect((await put("private", { imageId: a })).status).toBe(200);
    const refused = await put("private", { imageId: a, public: true });
    expect(refused.status).toBe(403);
    expect((await refused.json<any>()).error.message).toMatch(/images:write/);
    expect(await callJson("GET", "/v1/tags/private", 200, { token: owner.token })).toMatchObject({ public: false, imageId: a });
    // Moving a private tag is tags:write's job (the CLI sends public: false).
    expect((await put("private", { imageId: b, public: false })).status).toBe(200);
    // A public tag (made by images:write): tags:write alone may not expose another image through it, nor hide it.
    expect((await put("release", { imageId: a, public: true }, owner.token)).status).toBe(200);
    expect((await put("release", { imageId: b })).status).toBe(403);
    expect((await put("release", { imageId: a, public: false })).status).toBe(403);
    expect(await callJson("GET", "/v1/tags/release", 200, { token: owner.token })).toMatchObject({ public: true, imageId: a });
    // Re-pointing it at the image it already shows changes nothing public.
    expect((await put("release", { imageId: a })).status).toBe(200);
  });

  it("PUT /v1/registry/repositories refuses a tags:write-only token", async () => {
    const owner = await newApiTenant();
    const tagger = await callJson<{ token: string }>("POST", "/v1/tokens", 201, {
      token: owner.token,
      json: { name: "ci tagger", scopes: ["tags:write", "images:read"] },
    });
    const body = { repository: `${owner.workspace.name}/app`, public: true };
    expect((await call("PUT", "/v1/registry/repositories", { token: tagger.token, json: body })).status).toBe(403);
    expect(await env.DB.prepare("SELECT public FROM registry_repositories WHERE name = ?").bind(body.repository).first()).toBeNull();
    expect(await callJson("PUT", "/v1/registry/repositories", 200, { token: owner.token, json: body })).toEqual(body);
  });
});
