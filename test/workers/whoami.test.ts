// `GET /v1/whoami`: any valid token learns its own id, name, kind and scopes and the workspace
// it acts in (none for an admin token that names none).

import { describe, expect, it } from "vitest";
import { SCOPES } from "../../workers/auth/tokens.ts";
import { call, callJson, newTenant, newWorkspace } from "./periphery-helpers.ts";

describe("GET /v1/whoami", () => {
  it("describes an API token and its workspace, whatever its scopes", async () => {
    const { workspace, token } = await newTenant(["images:read"]);
    const tokens = await callJson("GET", "/v1/tokens", 200, { workspace: workspace.name });
    const me = await callJson("GET", "/v1/whoami", 200, { token });
    expect(me).toEqual({
      workspace: { id: workspace.id, name: workspace.name },
      token: { id: tokens.tokens[0].id, name: "test", kind: "api", scopes: ["images:read"] },
    });
  });

  it("gives the bootstrap admin token no workspace unless x-kiln-workspace names one", async () => {
    const me = await callJson("GET", "/v1/whoami", 200, {});
    expect(me).toEqual({ workspace: null, token: { id: "bootstrap", name: expect.any(String), kind: "admin", scopes: [...SCOPES] } });
    const workspace = await newWorkspace();
    const scoped = await callJson("GET", "/v1/whoami", 200, { workspace: workspace.name });
    expect(scoped.workspace).toEqual({ id: workspace.id, name: workspace.name });
    expect((await callJson("GET", "/v1/whoami", 404, { workspace: "no-such-workspace-x" })).error.code).toBe("not_found");
  });

  it("describes a stored admin token", async () => {
    const created = await callJson("POST", "/v1/tokens", 201, { json: { name: "ops", kind: "admin" } });
    const me = await callJson("GET", "/v1/whoami", 200, { token: created.token });
    expect(me).toEqual({ workspace: null, token: { id: created.id, name: "ops", kind: "admin", scopes: [...SCOPES] } });
  });

  it("refuses a missing, malformed or revoked token with 401 in the shared error shape", async () => {
    expect((await callJson("GET", "/v1/whoami", 401, { token: null })).error.code).toBe("unauthorized");
    expect((await call("GET", "/v1/whoami", { token: "kiln_api_nope" })).status).toBe(401);
    const { workspace, token } = await newTenant();
    const id = (await callJson("GET", "/v1/whoami", 200, { token })).token.id;
    await callJson("DELETE", `/v1/tokens/${id}`, 200, { workspace: workspace.name });
    await callJson("GET", "/v1/whoami", 401, { token });
  });
});
