// What a registry read costs, without weakening it. Blob GETs open the R2 object they expect
// while D1 checks the repository holds the blob (workers/registry/key-guesses.ts): D1's answer
// alone decides what is sent, so a hint never lets another repository or workspace read a blob,
// and a stale hint never serves wrong bytes. Every registry request draws once from its budgets.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index.ts";
import type { Limiter } from "../../workers/rate-limit.ts";
import { blobKey } from "../../workers/registry/blob-writer.ts";
import { bytes, newTenant, sha256Digest } from "./periphery-helpers.ts";

const BASE = "https://kiln.test";
const basic = (token: string) => `Basic ${btoa(`x:${token}`)}`;
const req = (method: string, path: string, auth: string, init: RequestInit = {}) =>
  SELF.fetch(`${BASE}${path}`, { ...init, method, headers: { authorization: auth, ...(init.headers ?? {}) } });

/** Pushes `data` in one `POST ...?digest=` (stored at its content-addressed key). */
async function pushMonolithic(repo: string, auth: string, data: Uint8Array): Promise<string> {
  const digest = await sha256Digest(data);
  const put = await req("POST", `/v2/${repo}/blobs/uploads/?digest=${digest}`, auth, {
    body: data,
    headers: { "content-length": String(data.byteLength) },
  });
  expect(put.status, await put.clone().text()).toBe(201);
  return digest;
}

/** Pushes `data` through an upload session (stored under the session's key). */
async function pushStreamed(repo: string, auth: string, data: Uint8Array): Promise<string> {
  const digest = await sha256Digest(data);
  const start = await req("POST", `/v2/${repo}/blobs/uploads/`, auth);
  const patch = await req("PATCH", start.headers.get("location")!, auth, {
    body: data,
    headers: { "content-length": String(data.byteLength) },
  });
  expect(patch.status, await patch.clone().text()).toBe(202);
  const put = await req("PUT", `${patch.headers.get("location")!}?digest=${digest}`, auth);
  expect(put.status, await put.clone().text()).toBe(201);
  return digest;
}

const body = async (response: Response) => new Uint8Array(await response.arrayBuffer());

describe("registry blob reads", () => {
  it("serves the bytes D1 names, whatever the key hint, and only from repositories that hold the blob", async () => {
    const a = await newTenant(["images:read", "images:write"]);
    const b = await newTenant(["images:read", "images:write"]);
    const whole = bytes(3000, 41);
    const streamed = bytes(5000, 42);
    const wholeDigest = await pushMonolithic(`${a.workspace.name}/app`, basic(a.token), whole);
    const streamedDigest = await pushStreamed(`${a.workspace.name}/app`, basic(a.token), streamed);
    for (let i = 0; i < 2; i++) {
      expect(await body(await req("GET", `/v2/${a.workspace.name}/app/blobs/${wholeDigest}`, basic(a.token)))).toEqual(whole);
      expect(await body(await req("GET", `/v2/${a.workspace.name}/app/blobs/${streamedDigest}`, basic(a.token)))).toEqual(streamed);
    }
    // The bytes exist and this isolate knows where: still no read through a repository that lacks the link.
    for (const [repo, auth] of [
      [`${a.workspace.name}/other`, basic(a.token)],
      [`${b.workspace.name}/app`, basic(b.token)],
    ] as const) {
      const denied = await req("GET", `/v2/${repo}/blobs/${wholeDigest}`, auth);
      expect(denied.status).toBe(404);
      expect(((await denied.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("BLOB_UNKNOWN");
    }
    // A stale hint: the key this isolate remembers now holds other bytes, and D1 names another key.
    const moved = `blobs/moved/${streamedDigest.slice(7)}`;
    const row = await env.DB.prepare("SELECT r2_key FROM registry_blobs WHERE digest = ?").bind(streamedDigest).first<{ r2_key: string }>();
    await env.REGISTRY.put(moved, streamed);
    await env.REGISTRY.put(row!.r2_key, bytes(5000, 99));
    await env.REGISTRY.put(blobKey(streamedDigest), bytes(5000, 98));
    await env.DB.prepare("UPDATE registry_blobs SET r2_key = ? WHERE digest = ?").bind(moved, streamedDigest).run();
    const fresh = await req("GET", `/v2/${a.workspace.name}/app/blobs/${streamedDigest}`, basic(a.token));
    expect(fresh.status).toBe(200);
    expect(await body(fresh)).toEqual(streamed);
    // Ranges are read from D1's key as before.
    const ranged = await req("GET", `/v2/${a.workspace.name}/app/blobs/${streamedDigest}`, basic(a.token), {
      headers: { range: "bytes=10-19" },
    });
    expect(ranged.status).toBe(206);
    expect(await body(ranged)).toEqual(streamed.subarray(10, 20));
  });
});

describe("registry request budgets", () => {
  it("charges every registry request once to each of its budgets, `/v2` included", async () => {
    const keys: string[] = [];
    const counting: Limiter = {
      async limit({ key }) {
        keys.push(key);
        return { success: true };
      },
    };
    for (const path of ["/v2", "/v2/", `/v2/some/repo/blobs/sha256:${"0".repeat(64)}`]) {
      keys.length = 0;
      const ctx = createExecutionContext();
      const headers = { "cf-connecting-ip": "192.0.2.44", authorization: "Bearer not-a-valid-token" };
      await worker.fetch!(
        new Request(`${BASE}${path}`, { headers }) as never,
        { ...env, RATE_LIMIT_IP: counting, RATE_LIMIT_TOKEN: counting } as Env,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      expect(
        keys.filter((k) => k.startsWith("ip:")),
        path,
      ).toHaveLength(1);
      expect(
        keys.filter((k) => k.startsWith("cred:")),
        path,
      ).toHaveLength(1);
    }
  });
});
