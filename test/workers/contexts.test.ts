// Context uploads: the missing-digests call, single uploads checked by R2's sha256, multipart
// uploads verified before they become visible, nothing stored on a mismatch, size limits.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { contextKey, MIN_PART_BYTES } from "../../workers/contexts/upload-plan.ts";
import { app as worker } from "../../workers/index.ts";
import { bytes, call, callJson, newTenant, sha256Digest } from "./periphery-helpers.ts";

async function upload(token: string, data: Uint8Array, digest?: string) {
  return call("PUT", `/v1/contexts/${digest ?? (await sha256Digest(data))}`, {
    token,
    body: data,
    headers: { "content-type": "application/octet-stream" },
  });
}

async function stagingKeys(): Promise<string[]> {
  return (await env.CONTEXTS.list({ prefix: "contexts/staging/" })).objects.map((o) => o.key);
}

describe("POST /v1/contexts/missing", () => {
  it("lists unknown digests once, in order, and [] after an upload (an unchanged resubmission uploads nothing)", async () => {
    const { token } = await newTenant();
    const a = bytes(1000, 1);
    const b = bytes(2000, 2);
    const [da, db] = [await sha256Digest(a), await sha256Digest(b)];
    expect(await callJson("POST", "/v1/contexts/missing", 200, { token, json: { digests: [db, da, db] } })).toEqual({ missing: [db, da] });
    expect((await upload(token, a)).status).toBe(201);
    expect((await upload(token, b)).status).toBe(201);
    expect(await callJson("POST", "/v1/contexts/missing", 200, { token, json: { digests: [da, db] } })).toEqual({ missing: [] });
    expect(await callJson("POST", "/v1/contexts/missing", 200, { token, json: { digests: [] } })).toEqual({ missing: [] });
  });

  it("reports a digest again when its object is gone from R2 (once its last check is older than the recheck window)", async () => {
    const { token } = await newTenant();
    const data = bytes(500, 3);
    const digest = await sha256Digest(data);
    await upload(token, data);
    await env.CONTEXTS.delete(contextKey(digest));
    await env.DB.prepare("UPDATE context_uploads SET checked_at = 0 WHERE digest = ?").bind(digest).run();
    expect(await callJson("POST", "/v1/contexts/missing", 200, { token, json: { digests: [digest] } })).toEqual({ missing: [digest] });
    expect((await upload(token, data)).status).toBe(201);
  });

  it("handles a full 256-layer chain in one call and refuses more, bad digests and unknown fields", async () => {
    const { token } = await newTenant();
    const digests = Array.from({ length: 256 }, (_, i) => `sha256:${i.toString(16).padStart(64, "0")}`);
    expect((await callJson("POST", "/v1/contexts/missing", 200, { token, json: { digests } })).missing).toHaveLength(256);
    for (const json of [
      { digests: [...digests, `sha256:${"f".repeat(64)}`] },
      { digests: ["sha256:XYZ"] },
      { digests: [`sha512:${"a".repeat(64)}`] },
      { digests: [], more: 1 },
      {},
    ]) {
      await callJson("POST", "/v1/contexts/missing", 400, { token, json });
    }
  });

  it("needs images:write", async () => {
    const { token } = await newTenant(["images:read"]);
    await callJson("POST", "/v1/contexts/missing", 403, { token, json: { digests: [] } });
  });
});

describe("PUT /v1/contexts/:digest", () => {
  it("stores the bytes at the content-addressed key and records the upload", async () => {
    const { workspace, token } = await newTenant();
    const data = bytes(4096, 4);
    const digest = await sha256Digest(data);
    const response = await upload(token, data);
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ digest, sizeBytes: 4096 });
    const object = await env.CONTEXTS.get(`contexts/sha256/${digest.slice(7)}`);
    expect(new Uint8Array(await object!.arrayBuffer())).toEqual(data);
    expect(
      object!.checksums.sha256 && [...new Uint8Array(object!.checksums.sha256)].map((b) => b.toString(16).padStart(2, "0")).join(""),
    ).toBe(digest.slice(7));
    const row = await env.DB.prepare("SELECT size_bytes FROM context_uploads WHERE workspace_id = ? AND digest = ?")
      .bind(workspace.id, digest)
      .first();
    expect(row).toEqual({ size_bytes: 4096 });
    // Again: already there, the body is not needed.
    expect((await upload(token, data)).status).toBe(200);
  });

  it("accepts a percent-encoded digest (the SDK encodes path segments)", async () => {
    const { token } = await newTenant();
    const data = bytes(10, 5);
    const digest = await sha256Digest(data);
    expect((await call("PUT", `/v1/contexts/${encodeURIComponent(digest)}`, { token, body: data })).status).toBe(201);
  });

  it("rejects a digest mismatch with 400 and stores nothing", async () => {
    const { workspace, token } = await newTenant();
    const data = bytes(3000, 6);
    const claimed = await sha256Digest(bytes(3000, 7));
    const response = await upload(token, data, claimed);
    expect(response.status).toBe(400);
    expect((await response.json<any>()).error.code).toBe("digest_mismatch");
    expect(await env.CONTEXTS.head(contextKey(claimed))).toBeNull();
    expect(await env.CONTEXTS.head(contextKey(await sha256Digest(data)))).toBeNull();
    expect(
      await env.DB.prepare("SELECT * FROM context_uploads WHERE workspace_id = ?")
        .bind(workspace.id)
        .all()
        .then((r) => r.results),
    ).toEqual([]);
    expect(await callJson("POST", "/v1/contexts/missing", 200, { token, json: { digests: [claimed] } })).toEqual({ missing: [claimed] });
  });

  it("a mismatching upload by another workspace leaves an existing object untouched", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const data = bytes(2048, 8);
    const digest = await sha256Digest(data);
    await upload(a.token, data);
    expect((await upload(b.token, bytes(2048, 9), digest)).status).toBe(400);
    expect(new Uint8Array(await (await env.CONTEXTS.get(contextKey(digest)))!.arrayBuffer())).toEqual(data);
    // B proved nothing, so B still has to upload it.
    expect(await callJson("POST", "/v1/contexts/missing", 200, { token: b.token, json: { digests: [digest] } })).toEqual({
      missing: [digest],
    });
  });

  it("requires Content-Length (400) and refuses bodies over CONTEXT_MAX_BYTES (413) before reading them", async () => {
    const { token } = await newTenant();
    const data = bytes(2000, 10);
    const digest = await sha256Digest(data);
    const stream = new ReadableStream({
      start: (c) => {
        c.enqueue(data);
        c.close();
      },
    });
    const chunked = await call("PUT", `/v1/contexts/${digest}`, { token, body: stream });
    expect(chunked.status).toBe(400);
    expect((await chunked.json<any>()).error.code).toBe("length_required");
    // The Worker's own app with a small limit (vars are per deployment; this is the same code path).
    const small = { ...env, CONTEXT_MAX_BYTES: "1000" } as unknown as Env;
    const tooBig = await worker.request(
      `/v1/contexts/${digest}`,
      { method: "PUT", body: data, headers: { authorization: `Bearer ${token}`, "content-length": String(data.byteLength) } },
      small,
    );
    expect(tooBig.status).toBe(413);
    expect(await tooBig.json()).toEqual({
      error: { code: "payload_too_large", message: "Request body exceeds the limit of 1000 bytes.", details: { limitBytes: 1000 } },
    });
    expect(await env.CONTEXTS.head(contextKey(digest))).toBeNull();
  });

  it("refuses malformed digests and bad tokens", async () => {
    const { token } = await newTenant();
    for (const digest of ["sha256:abc", `sha256:${"A".repeat(64)}`, `md5:${"a".repeat(64)}`, "missing-ish"]) {
      expect((await call("PUT", `/v1/contexts/${digest}`, { token, body: "x" })).status).toBe(400);
    }
    expect((await call("PUT", `/v1/contexts/sha256:${"a".repeat(64)}`, { token: "kiln_api_nope", body: "x" })).status).toBe(401);
  });
});

describe("multipart uploads", () => {
  const size = 2 * MIN_PART_BYTES + 12345;
  const data = bytes(size, 11);

  async function start(token: string, digest: string, partSizeBytes = MIN_PART_BYTES) {
    return callJson("POST", `/v1/contexts/${digest}/uploads`, 201, { token, json: { sizeBytes: size, partSizeBytes } });
  }
  function part(token: string, digest: string, uploadId: string, n: number, body: Uint8Array) {
    return call("PUT", `/v1/contexts/${digest}/uploads/${uploadId}/parts/${n}`, { token, body });
  }
  const slice = (n: number) => data.subarray((n - 1) * MIN_PART_BYTES, Math.min(size, n * MIN_PART_BYTES));

  it("assembles parts sent in any order, verifies the digest, then publishes at the content-addressed key", async () => {
    const { token } = await newTenant();
    const digest = await sha256Digest(data);
    const created = await start(token, digest);
    expect(created).toMatchObject({ uploadId: expect.stringMatching(/^upl_/), partCount: 3, partSizeBytes: MIN_PART_BYTES });
    const parts = [];
    for (const n of [3, 1, 2]) {
      const response = await part(token, digest, created.uploadId, n, slice(n));
      expect(response.status).toBe(200);
      parts.push(await response.json<{ partNumber: number; etag: string }>());
    }
    expect(await env.CONTEXTS.head(contextKey(digest))).toBeNull();
    expect(await callJson("POST", `/v1/contexts/${digest}/uploads/${created.uploadId}/complete`, 201, { token, json: { parts } })).toEqual({
      digest,
      sizeBytes: size,
    });
    // Compare digests, not arrays: a failing deep-equal of 10 MiB would print the whole diff.
    expect(await sha256Digest(new Uint8Array(await (await env.CONTEXTS.get(contextKey(digest)))!.arrayBuffer()))).toBe(digest);
    expect(await stagingKeys()).toEqual([]);
    expect(await callJson("POST", "/v1/contexts/missing", 200, { token, json: { digests: [digest] } })).toEqual({ missing: [] });
    // The upload is finished: its id is gone.
    expect((await part(token, digest, created.uploadId, 1, slice(1))).status).toBe(404);
  });

  it("rejects a whole-object digest mismatch: nothing published, staging and upload deleted", async () => {
    const { workspace, token } = await newTenant();
    const claimed = await sha256Digest(bytes(size, 12));
    const created = await start(token, claimed);
    const parts = [];
    for (const n of [1, 2, 3]) parts.push(await (await part(token, claimed, created.uploadId, n, slice(n))).json());
    const body = await callJson("POST", `/v1/contexts/${claimed}/uploads/${created.uploadId}/complete`, 400, { token, json: { parts } });
    expect(body.error.code).toBe("digest_mismatch");
    expect(await env.CONTEXTS.head(contextKey(claimed))).toBeNull();
    expect(await stagingKeys()).toEqual([]);
    expect(
      await env.DB.prepare("SELECT count(*) AS n FROM context_multipart_uploads WHERE workspace_id = ?").bind(workspace.id).first(),
    ).toEqual({ n: 0 });
    expect(await env.DB.prepare("SELECT count(*) AS n FROM context_uploads WHERE workspace_id = ?").bind(workspace.id).first()).toEqual({
      n: 0,
    });
  });

  it("enforces the layout: part sizes, part numbers, part lists, declared size limits", async () => {
    const { token } = await newTenant();
    const digest = await sha256Digest(data);
    const created = await start(token, digest);
    expect((await (await part(token, digest, created.uploadId, 1, slice(2).subarray(0, 100))).json<any>()).error.code).toBe(
      "part_size_mismatch",
    );
    expect((await part(token, digest, created.uploadId, 4, slice(3))).status).toBe(400);
    expect((await part(token, digest, created.uploadId, 0, slice(3))).status).toBe(400);
    const p1 = await (await part(token, digest, created.uploadId, 1, slice(1))).json<any>();
    for (const parts of [[p1], [p1, p1, p1], [p1, { partNumber: 2, etag: "x" }, { partNumber: 4, etag: "y" }]]) {
      await callJson("POST", `/v1/contexts/${digest}/uploads/${created.uploadId}/complete`, 400, { token, json: { parts } });
    }
    // Wrong etags are R2's refusal, still a 400, and the upload stays open for a correct retry.
    const bad = [p1, { partNumber: 2, etag: "nope" }, { partNumber: 3, etag: "nope" }];
    await callJson("POST", `/v1/contexts/${digest}/uploads/${created.uploadId}/complete`, 400, { token, json: { parts: bad } });
    expect((await part(token, digest, created.uploadId, 2, slice(2))).status).toBe(200);
    for (const json of [
      { sizeBytes: size, partSizeBytes: MIN_PART_BYTES - 1 },
      { sizeBytes: size, partSizeBytes: 64 * 1024 * 1024 + 1 },
      { sizeBytes: 0, partSizeBytes: MIN_PART_BYTES },
      { sizeBytes: size, partSizeBytes: MIN_PART_BYTES, x: 1 },
    ]) {
      await callJson("POST", `/v1/contexts/${digest}/uploads`, 400, { token, json });
    }
    await callJson("POST", `/v1/contexts/${digest}/uploads`, 413, {
      token,
      json: { sizeBytes: 6 * 1024 ** 3, partSizeBytes: 64 * 1024 * 1024 },
    });
  });

  it("keeps uploads private to their workspace (404) and can be aborted", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const digest = await sha256Digest(data);
    const created = await start(a.token, digest);
    expect((await part(b.token, digest, created.uploadId, 1, slice(1))).status).toBe(404);
    await callJson("POST", `/v1/contexts/${digest}/uploads/${created.uploadId}/complete`, 404, {
      token: b.token,
      json: { parts: [{ partNumber: 1, etag: "x" }] },
    });
    await callJson("DELETE", `/v1/contexts/${digest}/uploads/${created.uploadId}`, 404, { token: b.token });
    await callJson("DELETE", `/v1/contexts/${digest}/uploads/${created.uploadId}`, 200, { token: a.token });
    expect((await part(a.token, digest, created.uploadId, 1, slice(1))).status).toBe(404);
    await callJson("DELETE", `/v1/contexts/${digest}/uploads/upl_${"0".repeat(32)}`, 404, { token: a.token });
  });
});
