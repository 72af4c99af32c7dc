// Workspaces: admin-only create and list, names validated, duplicates refused.
import { describe, expect, it } from "vitest";
import { call, callJson, newTenant, newWorkspace } from "./periphery-helpers.ts";

describe("POST /v1/workspaces", () => {
  it("creates a workspace with the bootstrap admin token", async () => {
    const ws = await callJson("POST", "/v1/workspaces", 201, { json: { name: "acme-create" } });
    expect(ws).toEqual({ id: expect.stringMatching(/^ws_[0-9a-f]{32}$/), name: "acme-create", createdAt: expect.any(String) });
    expect(Number.isNaN(Date.parse(ws.createdAt))).toBe(false);
  });

  it("refuses a duplicate name with 409", async () => {
    await callJson("POST", "/v1/workspaces", 201, { json: { name: "acme-dup" } });
    const body = await callJson("POST", "/v1/workspaces", 409, { json: { name: "acme-dup" } });
    expect(body.error.code).toBe("workspace_exists");
  });

  it("refuses bad names, unknown fields, wrong types and non-JSON with 4xx in the one error shape", async () => {
    for (const json of [
      { name: "Upper" },
      { name: "-lead" },
      { name: "" },
      { name: "a".repeat(64) },
      { name: "x y" },
      { name: "ok", extra: 1 },
      { name: 5 },
      {},
    ]) {
      const body = await callJson("POST", "/v1/workspaces", 400, { json });
      expect(body.error.code).toBe("invalid_request");
    }
    const malformed = await call("POST", "/v1/workspaces", { body: "{not json", headers: { "content-type": "application/json" } });
    expect(malformed.status).toBe(400);
    const wrongType = await call("POST", "/v1/workspaces", { body: "name=x", headers: { "content-type": "text/plain" } });
    expect(wrongType.status).toBe(415);
    expect((await wrongType.json<any>()).error.code).toBe("invalid_request");
  });

  it("refuses an oversized body with 413", async () => {
    const body = await callJson("POST", "/v1/workspaces", 413, { json: { name: "x".repeat(10_000) } });
    expect(body.error.code).toBe("payload_too_large");
  });

  it("needs an admin token: 401 without or with a bad one, 403 for a workspace token", async () => {
    expect((await call("POST", "/v1/workspaces", { token: null, json: { name: "nope" } })).status).toBe(401);
    expect((await call("POST", "/v1/workspaces", { token: "kiln_api_garbage", json: { name: "nope" } })).status).toBe(401);
    const { token } = await newTenant();
    const forbidden = await callJson("POST", "/v1/workspaces", 403, { token, json: { name: "nope" } });
    expect(forbidden.error.code).toBe("forbidden");
    expect((await call("GET", "/v1/workspaces", { token })).status).toBe(403);
  });
});

describe("GET /v1/workspaces", () => {
  it("lists workspaces by name", async () => {
    const a = await newWorkspace("list-b");
    const b = await newWorkspace("list-a");
    const { workspaces } = await callJson<{ workspaces: { name: string }[] }>("GET", "/v1/workspaces", 200);
    const names = workspaces.map((w) => w.name);
    expect(names).toContain(a.name);
    expect(names).toContain(b.name);
    expect(names).toEqual([...names].sort());
  });
});
