// The registry's HTTP API through the Worker's own fetch: auth and the token flow, uploads
// (monolithic, chunked, wrong digest, mount), range reads, manifests, tags, referrers, GC.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { hashToken } from "../../workers/auth/tokens.ts";
import { runRegistryGc } from "../../workers/registry/gc.ts";
import { bytes, newTenant, sha256Digest } from "./periphery-helpers.ts";

const BASE = "https://kiln.test";
const basic = (token: string, user = "x") => `Basic ${btoa(`${user}:${token}`)}`;
const req = (method: string, path: string, auth: string | null, init: RequestInit & { headers?: Record<string, string> } = {}) =>
  SELF.fetch(`${BASE}${path}`, { ...init, method, headers: { ...(auth ? { authorization: auth } : {}), ...init.headers } });

async function pushBlob(repo: string, auth: string, data: Uint8Array, chunk = data.byteLength): Promise<string> {
  const digest = await sha256Digest(data);
  const start = await req("POST", `/v2/${repo}/blobs/uploads/`, auth);
  expect(start.status).toBe(202);
  let location = start.headers.get("location")!;
  for (let at = 0; at < data.byteLength; at += chunk) {
    const part = data.subarray(at, at + chunk);
    const patch = await req("PATCH", location, auth, { body: part, headers: { "content-range": `${at}-${at + part.byteLength - 1}` } });
    expect(patch.status, await patch.clone().text()).toBe(202);
    location = patch.headers.get("location")!;
  }
  const put = await req("PUT", `${location}?digest=${digest}`, auth);
  expect(put.status, await put.clone().text()).toBe(201);
  return digest;
}

async function pushImage(repo: string, auth: string, tag: string, seed: number, extra: Record<string, unknown> = {}) {
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", seed }));
  const layer = bytes(1000 + seed, seed);
  const configDigest = await pushBlob(repo, auth, config);
  const layerDigest = await pushBlob(repo, auth, layer);
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: layer.byteLength }],
      ...extra,
    }),
  );
  const put = await req("PUT", `/v2/${repo}/manifests/${tag}`, auth, {
    body: manifest,
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
  });
  expect(put.status, await put.clone().text()).toBe(201);
  return { digest: await sha256Digest(manifest), layerDigest, configDigest, size: manifest.byteLength };
}

describe("registry auth", () => {
  it("challenges anonymous callers and runs the Docker token flow", async () => {
    const { workspace, token } = await newTenant(["images:read", "images:write"]);
    const bare = await req("GET", "/v2/", null);
    expect(bare.status).toBe(401);
    expect(bare.headers.get("www-authenticate")).toBe(`Bearer realm="${BASE}/v2/token",service="kiln"`);
    expect(bare.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
    const issued = await req(
      "GET",
      `/v2/token?service=kiln&scope=repository:${workspace.name}/app:pull,push&scope=repository:other/app:pull`,
      basic(token),
    );
    expect(issued.status).toBe(200);
    const body = await issued.json<{ token: string; expires_in: number }>();
    expect(body.expires_in).toBe(900);
    const bearer = `Bearer ${body.token}`;
    expect((await req("GET", "/v2/", bearer)).status).toBe(200);
    await pushImage(`${workspace.name}/app`, bearer, "v1", 1);
    const foreign = await req("GET", "/v2/other/app/tags/list", bearer);
    expect(foreign.status).toBe(401);
    expect(foreign.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect((await req("GET", "/v2/", "Bearer forged.token")).status).toBe(401);
  });

  it("keeps workspaces apart, honours read-only tokens, job tokens and public repositories", async () => {
    const a = await newTenant(["images:read", "images:write"]);
    const b = await newTenant(["images:read", "images:write"]);
    const reader = await newTenant(["images:read"]);
    const repo = `${a.workspace.name}/private`;
    const image = await pushImage(repo, basic(a.token), "v1", 2);
    const denied = await req("GET", `/v2/${repo}/manifests/v1`, basic(b.token));
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({
      errors: [{ code: "DENIED", message: "requested access to the resource is denied", detail: { repository: repo, actions: ["pull"] } }],
    });
    expect((await req("GET", `/v2/${repo}/blobs/${image.layerDigest}`, basic(b.token))).status).toBe(403);
    expect((await req("POST", `/v2/${reader.workspace.name}/x/blobs/uploads/`, basic(reader.token))).status).toBe(403);
    // A job token: username kiln-job, sha256 in job_tokens.
    const jobToken = "job-secret-0123456789";
    // Scoped as the Build object scopes one (workers/auth/job-scope.ts): push to its repository under its own tag.
    const scope = { push: { [`${a.workspace.name}/built`]: ["layer-1"] }, pull: [] };
    await env.DB.prepare("INSERT INTO job_tokens (hash, workspace_id, job_id, actions, expires_at, scope) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(
        await hashToken(jobToken),
        a.workspace.id,
        "job-1",
        JSON.stringify(["pull", "push"]),
        Date.now() + 60_000,
        JSON.stringify(scope),
      )
      .run();
    await pushImage(`${a.workspace.name}/built`, basic(jobToken, "kiln-job"), "layer-1", 3);
    expect((await req("GET", `/v2/${b.workspace.name}/x/tags/list`, basic(jobToken, "kiln-job"))).status).toBe(403);
    expect((await req("GET", "/v2/", basic(jobToken, "someone-else"))).status).toBe(401);
    const anon = await req("GET", `/v2/${repo}/manifests/v1`, null);
    expect(anon.status).toBe(401);
    const made = await SELF.fetch(`${BASE}/v1/registry/repositories`, {
      method: "PUT",
      headers: { authorization: `Bearer ${a.token}`, "content-type": "application/json" },
      body: JSON.stringify({ repository: repo, public: true }),
    });
    expect(made.status).toBe(200);
    const other = await SELF.fetch(`${BASE}/v1/registry/repositories`, {
      method: "PUT",
      headers: { authorization: `Bearer ${b.token}`, "content-type": "application/json" },
      body: JSON.stringify({ repository: repo, public: false }),
    });
    expect(other.status).toBe(404);
    expect((await req("GET", `/v2/${repo}/manifests/v1`, null)).status).toBe(200);
    expect((await req("GET", `/v2/${repo}/blobs/${image.layerDigest}`, null)).status).toBe(200);
    expect((await req("PUT", `/v2/${repo}/manifests/v2`, null, { body: "{}" })).status).toBe(401);
  });
});

describe("registry blobs", { timeout: 60_000 }, () => {
  it("stores chunked uploads across parts, serves ranges and rejects a wrong digest keeping nothing", async () => {
    const { workspace, token } = await newTenant(["images:read", "images:write"]);
    const repo = `${workspace.name}/blobs`;
    const auth = basic(token);
    const data = bytes(20 * 1024 * 1024 + 5, 7);
    const digest = await pushBlob(repo, auth, data, 3 * 1024 * 1024 + 1);
    const head = await req("HEAD", `/v2/${repo}/blobs/${digest}`, auth);
    expect(head.headers.get("content-length")).toBe(String(data.byteLength));
    const ranged = await req("GET", `/v2/${repo}/blobs/${digest}`, auth, { headers: { range: "bytes=8388600-8388615" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 8388600-8388615/${data.byteLength}`);
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(data.subarray(8388600, 8388616));
    const whole = new Uint8Array(await (await req("GET", `/v2/${repo}/blobs/${digest}`, auth)).arrayBuffer());
    expect(await sha256Digest(whole)).toBe(digest);
    expect((await req("GET", `/v2/${repo}/blobs/${digest}`, auth, { headers: { range: `bytes=${data.byteLength}-` } })).status).toBe(416);

    const before = (await env.REGISTRY.list({ prefix: "blobs/" })).objects.length;
    const wrong = `sha256:${"0".repeat(64)}`;
    const start = await req("POST", `/v2/${repo}/blobs/uploads/`, auth);
    const location = start.headers.get("location")!;
    expect((await req("PATCH", location, auth, { body: bytes(9 * 1024 * 1024, 8) })).status).toBe(202);
    const bad = await req("PUT", `${location}?digest=${wrong}`, auth);
    expect(bad.status).toBe(400);
    expect((await bad.json<any>()).errors[0].code).toBe("DIGEST_INVALID");
    const mono = await req("POST", `/v2/${repo}/blobs/uploads/?digest=${wrong}`, auth, {
      body: bytes(100, 9),
      headers: { "content-length": "100" },
    });
    expect(mono.status).toBe(400);
    expect((await env.REGISTRY.list({ prefix: "blobs/" })).objects.length).toBe(before);
    expect((await req("GET", location, auth)).status).toBe(404);
  });

  it("stores a streamed upload as one object, verified, and turns it into parts when more bytes follow", async () => {
    const { workspace, token } = await newTenant(["images:read", "images:write"]);
    const repo = `${workspace.name}/streamed`;
    const auth = basic(token);
    const upload = async () => (await req("POST", `/v2/${repo}/blobs/uploads/`, auth)).headers.get("location")!;
    // One PATCH with a length and no Content-Range (docker, skopeo, crane), then PUT.
    const data = bytes(9 * 1024 * 1024 + 3, 11);
    const digest = await sha256Digest(data);
    const location = await upload();
    const patch = await req("PATCH", location, auth, { body: data, headers: { "content-length": String(data.byteLength) } });
    expect(patch.headers.get("range")).toBe(`0-${data.byteLength - 1}`);
    const sessionKey = `blobs/uploads/${location.split("/").at(-1)}`;
    expect((await env.REGISTRY.head(sessionKey))?.size).toBe(data.byteLength);
    expect((await req("PUT", `${location}?digest=${digest}`, auth)).status).toBe(201);
    const served = await req("GET", `/v2/${repo}/blobs/${digest}`, auth, { headers: { range: "bytes=9437184-9437190" } });
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(data.subarray(9437184, 9437191));

    // More bytes after a whole object: it becomes multipart parts, then the chunk follows.
    const more = bytes(5 * 1024 * 1024, 12);
    const joined = new Uint8Array(data.byteLength + more.byteLength);
    joined.set(data);
    joined.set(more, data.byteLength);
    const second = await upload();
    expect((await req("PATCH", second, auth, { body: data, headers: { "content-length": String(data.byteLength) } })).status).toBe(202);
    const chunk = await req("PATCH", second, auth, {
      body: more,
      headers: { "content-range": `${data.byteLength}-${joined.byteLength - 1}` },
    });
    expect(chunk.headers.get("range")).toBe(`0-${joined.byteLength - 1}`);
    const joinedDigest = await sha256Digest(joined);
    expect((await req("PUT", `${second}?digest=${joinedDigest}`, auth)).status).toBe(201);
    expect(await sha256Digest(new Uint8Array(await (await req("GET", `/v2/${repo}/blobs/${joinedDigest}`, auth)).arrayBuffer()))).toBe(
      joinedDigest,
    );

    // A streamed body cut short stores nothing: the session stays at offset 0.
    const third = await upload();
    let sent = 0;
    const broken = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 2 * 1024 * 1024) return controller.error(new Error("connection dropped"));
        controller.enqueue(data.subarray(sent, sent + 1024 * 1024));
        sent += 1024 * 1024;
      },
    });
    const cut = await req("PATCH", third, auth, { body: broken, headers: { "content-length": String(data.byteLength) } }).catch(() => null);
    if (cut) expect(cut.status).toBeGreaterThanOrEqual(400);
    expect((await req("GET", third, auth)).headers.get("range")).toBe("0-0");
    expect(await env.REGISTRY.head(`blobs/uploads/${third.split("/").at(-1)}`)).toBeNull();
  });

  it("answers upload status and out-of-order chunks with the current range, and cancels", async () => {
    const { workspace, token } = await newTenant(["images:read", "images:write"]);
    const repo = `${workspace.name}/sessions`;
    const auth = basic(token);
    const start = await req("POST", `/v2/${repo}/blobs/uploads/`, auth);
    const location = start.headers.get("location")!;
    expect(start.headers.get("range")).toBe("0-0");
    expect((await req("PATCH", location, auth, { body: bytes(10, 1), headers: { "content-range": "0-9" } })).status).toBe(202);
    const skip = await req("PATCH", location, auth, { body: bytes(10, 1), headers: { "content-range": "20-29" } });
    expect(skip.status).toBe(416);
    expect(skip.headers.get("range")).toBe("0-9");
    expect((await req("GET", location, auth)).headers.get("range")).toBe("0-9");
    expect((await req("GET", location.replace(workspace.name, `${workspace.name}x`), auth)).status).toBe(403);
    expect((await req("DELETE", location, auth)).status).toBe(204);
    expect((await req("GET", location, auth)).status).toBe(404);
  });

  it("mounts a blob across repositories only for callers that can read the source", async () => {
    const a = await newTenant(["images:read", "images:write"]);
    const b = await newTenant(["images:read", "images:write"]);
    const digest = await pushBlob(`${a.workspace.name}/src`, basic(a.token), bytes(500, 3));
    const mounted = await req(
      "POST",
      `/v2/${a.workspace.name}/dst/blobs/uploads/?mount=${digest}&from=${a.workspace.name}/src`,
      basic(a.token),
    );
    expect(mounted.status).toBe(201);
    expect((await req("HEAD", `/v2/${a.workspace.name}/dst/blobs/${digest}`, basic(a.token))).status).toBe(200);
    const stolen = await req(
      "POST",
      `/v2/${b.workspace.name}/dst/blobs/uploads/?mount=${digest}&from=${a.workspace.name}/src`,
      basic(b.token),
    );
    expect(stolen.status).toBe(202);
    expect((await req("HEAD", `/v2/${b.workspace.name}/dst/blobs/${digest}`, basic(b.token))).status).toBe(404);
  });
});

describe("registry manifests, tags and referrers", () => {
  it("resolves tags and digests, pages tags, lists referrers and deletes", async () => {
    const { workspace, token } = await newTenant(["images:read", "images:write"]);
    const repo = `${workspace.name}/app`;
    const auth = basic(token);
    const first = await pushImage(repo, auth, "v1", 10);
    const second = await pushImage(repo, auth, "v1", 11);
    const byTag = await req("GET", `/v2/${repo}/manifests/v1`, auth);
    expect(byTag.headers.get("docker-content-digest")).toBe(second.digest);
    expect(byTag.headers.get("content-type")).toBe("application/vnd.oci.image.manifest.v1+json");
    expect((await req("GET", `/v2/${repo}/manifests/${first.digest}`, auth)).status).toBe(200);
    for (const tag of ["a", "b", "c"]) {
      const raw = await (await req("GET", `/v2/${repo}/manifests/${first.digest}`, auth)).arrayBuffer();
      expect(
        (
          await req("PUT", `/v2/${repo}/manifests/${tag}`, auth, {
            body: raw,
            headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
          })
        ).status,
      ).toBe(201);
    }
    const page = await req("GET", `/v2/${repo}/tags/list?n=2`, auth);
    expect(await page.json()).toEqual({ name: repo, tags: ["a", "b"] });
    expect(page.headers.get("link")).toBe(`</v2/${repo}/tags/list?n=2&last=b>; rel="next"`);
    expect(await (await req("GET", `/v2/${repo}/tags/list?n=2&last=b`, auth)).json()).toEqual({ name: repo, tags: ["c", "v1"] });
    expect((await req("GET", `/v2/${workspace.name}/none/tags/list`, auth)).status).toBe(404);

    const sbom = await pushImage(repo, auth, "sbom", 12, {
      artifactType: "application/spdx+json",
      subject: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: second.digest, size: second.size },
      annotations: { kind: "sbom" },
    });
    const referrers = await req("GET", `/v2/${repo}/referrers/${second.digest}`, auth);
    expect(referrers.headers.get("content-type")).toBe("application/vnd.oci.image.index.v1+json");
    expect((await referrers.json<any>()).manifests).toEqual([
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: sbom.digest,
        size: sbom.size,
        artifactType: "application/spdx+json",
        annotations: { kind: "sbom" },
      },
    ]);
    expect((await (await req("GET", `/v2/${repo}/referrers/${second.digest}?artifactType=other`, auth)).json<any>()).manifests).toEqual([]);

    const missing = await req("PUT", `/v2/${repo}/manifests/broken`, auth, {
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "x", digest: `sha256:${"9".repeat(64)}`, size: 1 },
        layers: [],
      }),
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    });
    expect(missing.status).toBe(400);
    expect((await missing.json<any>()).errors[0].code).toBe("MANIFEST_BLOB_UNKNOWN");
    expect(
      (
        await req("PUT", `/v2/${repo}/manifests/bad`, auth, {
          body: "not json",
          headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
        })
      ).status,
    ).toBe(400);

    expect((await req("DELETE", `/v2/${repo}/manifests/a`, auth)).status).toBe(202);
    expect((await req("GET", `/v2/${repo}/manifests/a`, auth)).status).toBe(404);
    expect((await req("DELETE", `/v2/${repo}/manifests/${first.digest}`, auth)).status).toBe(202);
    expect((await req("HEAD", `/v2/${repo}/manifests/b`, auth)).status).toBe(404);
  });
});

describe("registry garbage collection", () => {
  it("keeps referenced and recent blobs, reports in dry-run, sweeps the rest after the grace period", async () => {
    const { workspace, token } = await newTenant(["images:read", "images:write"]);
    const repo = `${workspace.name}/gc`;
    const auth = basic(token);
    const kept = await pushImage(repo, auth, "v1", 20);
    const orphan = await pushBlob(repo, auth, bytes(3000, 21));
    const now = Date.now();
    const fresh = await runRegistryGc(env, { dryRun: true, now });
    expect(fresh.blobs.map((b) => b.digest)).not.toContain(orphan);
    const later = now + 25 * 60 * 60 * 1000;
    const dry = await runRegistryGc(env, { dryRun: true, now: later });
    expect(dry.blobs.map((b) => b.digest)).toContain(orphan);
    expect(dry.blobs.map((b) => b.digest)).not.toContain(kept.layerDigest);
    expect((await req("HEAD", `/v2/${repo}/blobs/${orphan}`, auth)).status).toBe(200);
    // The configured grace period (REGISTRY_GC_GRACE_SECONDS, 24 h in wrangler.toml) unless the run names one.
    expect(dry.cutoff).toBe(new Date(later - 24 * 60 * 60 * 1000).toISOString());
    const swept = await runRegistryGc(env, { dryRun: false, now: later, graceMs: 1000 });
    expect(swept.cutoff).toBe(new Date(later - 1000).toISOString());
    expect(swept.blobs.map((b) => b.digest)).toContain(orphan);
    expect((await req("HEAD", `/v2/${repo}/blobs/${orphan}`, auth)).status).toBe(404);
    expect((await req("GET", `/v2/${repo}/blobs/${kept.layerDigest}`, auth)).status).toBe(200);
  });
});
