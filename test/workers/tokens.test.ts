// API tokens: created once and shown once, stored as sha256, scoped, listable without secrets,
// revocable; workspace tokens cannot escalate or reach other workspaces.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { hashToken, parseToken } from "../../workers/auth/tokens.ts";
import { call, callJson, newTenant, newWorkspace } from "./periphery-helpers.ts";

describe("POST /v1/tokens", () => {
  it("returns a checksummed kiln_api_ token once and stores only its sha256", async () => {
    const ws = await newWorkspace();
    const created = await callJson("POST", "/v1/tokens", 201, {
      workspace: ws.name,
      json: { name: "ci", scopes: ["images:read", "images:write"] },
    });
    expect(created).toMatchObject({
      id: expect.stringMatching(/^tok_/),
      name: "ci",
      kind: "api",
      workspaceId: ws.id,
      scopes: ["images:read", "images:write"],
      revokedAt: null,
    });
    expect(parseToken(created.token)).toBe("api");
    const row = await env.DB.prepare("SELECT hash FROM tokens WHERE id = ?").bind(created.id).first<{ hash: string }>();
    expect(row!.hash).toBe(await hashToken(created.token));
    const dump = JSON.stringify(await env.DB.prepare("SELECT * FROM tokens WHERE id = ?").bind(created.id).all());
    expect(dump).not.toContain(created.token);
    // The new token works, with exactly its scopes.
    expect((await call("GET", "/v1/secrets", { token: created.token })).status).toBe(403);
  });

  it("lets an admin mint further admin tokens that hold every scope", async () => {
    const created = await callJson("POST", "/v1/tokens", 201, { json: { name: "ops", kind: "admin" } });
    expect(parseToken(created.token)).toBe("admin");
    expect(created.workspaceId).toBeNull();
    await callJson("POST", "/v1/workspaces", 201, { token: created.token, json: { name: `by-admin-${Date.now()}` } });
    expect((await callJson("POST", "/v1/tokens", 400, { json: { name: "ops", kind: "admin", scopes: ["images:read"] } })).error.code).toBe(
      "invalid_request",
    );
  });

  it("refuses escalation: a workspace token grants only scopes it holds and never admin", async () => {
    const { token } = await newTenant(["tokens:write", "images:read"]);
    await callJson("POST", "/v1/tokens", 201, { token, json: { name: "sub", scopes: ["images:read"] } });
    expect((await callJson("POST", "/v1/tokens", 403, { token, json: { name: "sub", scopes: ["secrets:read"] } })).error.message).toContain(
      "secrets:read",
    );
    await callJson("POST", "/v1/tokens", 403, { token, json: { name: "root", kind: "admin" } });
  });

  it("validates the body: unknown scopes and fields, missing scopes, admin without a workspace", async () => {
    const ws = await newWorkspace();
    for (const json of [
      { name: "x", scopes: ["root"] },
      { name: "x", scopes: ["images:read"], extra: true },
      { name: "x" },
      { name: "", scopes: ["images:read"] },
      { name: "x", scopes: [] },
    ]) {
      await callJson("POST", "/v1/tokens", 400, { workspace: ws.name, json });
    }
    expect((await callJson("POST", "/v1/tokens", 400, { json: { name: "x", scopes: ["images:read"] } })).error.message).toContain(
      "x-kiln-workspace",
    );
    await callJson("POST", "/v1/tokens", 404, { workspace: "no-such-workspace", json: { name: "x", scopes: ["images:read"] } });
  });

  it("needs the tokens:write scope", async () => {
    const { token } = await newTenant(["images:read"]);
    await callJson("POST", "/v1/tokens", 403, { token, json: { name: "x", scopes: ["images:read"] } });
    await callJson("GET", "/v1/tokens", 403, { token });
  });

  it("rejects tokens with a bad checksum before any lookup", async () => {
    const { token } = await newTenant();
    const flipped = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");
    expect((await call("GET", "/v1/tokens", { token: flipped })).status).toBe(401);
  });
});

describe("GET /v1/tokens", () => {
  it("lists the workspace's tokens without secrets or hashes", async () => {
    const { workspace, token } = await newTenant();
    const other = await newTenant();
    const { tokens } = await callJson<{ tokens: Record<string, unknown>[] }>("GET", "/v1/tokens", 200, { token });
    expect(tokens).toHaveLength(1);
    expect(tokens[0]).toMatchObject({ workspaceId: workspace.id, kind: "api" });
    expect(Object.keys(tokens[0]!).sort()).toEqual(["createdAt", "id", "kind", "name", "revokedAt", "scopes", "workspaceId"]);
    const text = JSON.stringify(tokens);
    expect(text).not.toContain(token);
    expect(text).not.toContain(await hashToken(token));
    expect(text).not.toContain(other.workspace.id);
  });

  it("lists admin tokens for an admin caller without a workspace header", async () => {
    await callJson("POST", "/v1/tokens", 201, { json: { name: "listed-admin", kind: "admin" } });
    const { tokens } = await callJson<{ tokens: { kind: string; name: string }[] }>("GET", "/v1/tokens", 200);
    expect(tokens.every((t) => t.kind === "admin")).toBe(true);
    expect(tokens.map((t) => t.name)).toContain("listed-admin");
  });
});

describe("DELETE /v1/tokens/:id", () => {
  it("revokes at once and idempotently", async () => {
    const { workspace } = await newTenant();
    const victim = await callJson("POST", "/v1/tokens", 201, {
      workspace: workspace.name,
      json: { name: "victim", scopes: ["images:read"] },
    });
    await callJson("GET", "/v1/secrets", 403, { token: victim.token });
    await callJson("DELETE", `/v1/tokens/${victim.id}`, 200, { workspace: workspace.name });
    expect((await call("GET", "/v1/secrets", { token: victim.token })).status).toBe(401);
    await callJson("DELETE", `/v1/tokens/${victim.id}`, 200, { workspace: workspace.name });
    const { tokens } = await callJson("GET", "/v1/tokens", 200, { workspace: workspace.name });
    expect(tokens.find((t: { id: string }) => t.id === victim.id).revokedAt).toEqual(expect.any(String));
  });

  it("answers 404 for another workspace's token and for unknown ids, revoking nothing", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const { tokens } = await callJson("GET", "/v1/tokens", 200, { token: b.token });
    await callJson("DELETE", `/v1/tokens/${tokens[0].id}`, 404, { token: a.token });
    await callJson("DELETE", "/v1/tokens/tok_unknown", 404, { token: a.token });
    await callJson("GET", "/v1/tokens", 200, { token: b.token });
  });
});
