// Runner context downloads: bearer job tokens looked up by sha256, action and expiry checked,
// only the token's workspace's uploads, byte ranges for resumed downloads.
import { describe, expect, it } from "vitest";
import { contextDownloadPath } from "../../workers/contexts/upload-plan.ts";
import { bytes, call, insertJobToken, newTenant, sha256Digest } from "./periphery-helpers.ts";

async function uploaded(seed: number) {
  const tenant = await newTenant();
  const data = bytes(10_000, seed);
  const digest = await sha256Digest(data);
  expect((await call("PUT", `/v1/contexts/${digest}`, { token: tenant.token, body: data })).status).toBe(201);
  return { ...tenant, data, digest };
}

describe("GET /v1/runner/contexts/:digest", () => {
  it("streams the tarball to a job token of the uploading workspace", async () => {
    const { workspace, data, digest } = await uploaded(21);
    const token = await insertJobToken(workspace.id);
    const response = await call("GET", contextDownloadPath(digest), { token });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-tar");
    expect(response.headers.get("content-length")).toBe("10000");
    expect(response.headers.get("accept-ranges")).toBe("bytes");
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(data);
  });

  it("serves byte ranges so a runner can resume", async () => {
    const { workspace, data, digest } = await uploaded(22);
    const token = await insertJobToken(workspace.id);
    const tail = await call("GET", contextDownloadPath(digest), { token, headers: { range: "bytes=9000-" } });
    expect(tail.status).toBe(206);
    expect(tail.headers.get("content-range")).toBe("bytes 9000-9999/10000");
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(data.subarray(9000));
    const middle = await call("GET", contextDownloadPath(digest), { token, headers: { range: "bytes=10-19" } });
    expect(middle.status).toBe(206);
    expect(middle.headers.get("content-range")).toBe("bytes 10-19/10000");
    expect(new Uint8Array(await middle.arrayBuffer())).toEqual(data.subarray(10, 20));
  });

  it("serves suffix ranges, ignores unsupported ranges and answers 416 past the end", async () => {
    const { workspace, data, digest } = await uploaded(27);
    const token = await insertJobToken(workspace.id);
    const suffix = await call("GET", contextDownloadPath(digest), { token, headers: { range: "bytes=-10" } });
    expect(suffix.headers.get("content-range")).toBe("bytes 9990-9999/10000");
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(data.subarray(9990));
    for (const range of ["bytes=abc", "bytes=5-1", "bytes=0-1,5-6", "items=0-1"]) {
      const whole = await call("GET", contextDownloadPath(digest), { token, headers: { range } });
      expect(whole.status).toBe(200);
      expect((await whole.arrayBuffer()).byteLength).toBe(10_000);
    }
    const past = await call("GET", contextDownloadPath(digest), { token, headers: { range: "bytes=10000-" } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */10000");
    expect((await past.json<any>()).error.code).toBe("range_not_satisfiable");
  });

  it("answers 404 to another workspace's job for the same digest (it cannot read by digest)", async () => {
    const { digest } = await uploaded(23);
    const other = await newTenant();
    const token = await insertJobToken(other.workspace.id);
    const response = await call("GET", contextDownloadPath(digest), { token });
    expect(response.status).toBe(404);
    expect((await response.json<any>()).error.code).toBe("not_found");
    expect((await call("GET", contextDownloadPath(`sha256:${"0".repeat(64)}`), { token })).status).toBe(404);
  });

  it("refuses missing, unknown and expired tokens with 401, and tokens without context:read with 403", async () => {
    const { workspace, digest } = await uploaded(24);
    expect((await call("GET", contextDownloadPath(digest), { token: null })).status).toBe(401);
    expect((await call("GET", contextDownloadPath(digest), { token: "job_unknown" })).status).toBe(401);
    const expired = await insertJobToken(workspace.id, { expiresInMs: -1 });
    expect((await call("GET", contextDownloadPath(digest), { token: expired })).status).toBe(401);
    const pullOnly = await insertJobToken(workspace.id, { actions: ["pull"] });
    expect((await call("GET", contextDownloadPath(digest), { token: pullOnly })).status).toBe(403);
  });

  it("does not accept API tokens in place of job tokens", async () => {
    const { token, digest } = await uploaded(25);
    expect((await call("GET", contextDownloadPath(digest), { token })).status).toBe(401);
  });

  it("refuses a malformed digest with 400", async () => {
    const { workspace } = await uploaded(26);
    const token = await insertJobToken(workspace.id);
    expect((await call("GET", "/v1/runner/contexts/sha256:xyz", { token })).status).toBe(400);
  });
});
