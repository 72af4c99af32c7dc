// `PUT /v1/registry/repositories`: a documented OpenAPI route whose failures (validation,
// auth, isolation) answer the shared `{ error: { code, message, details? } }` shape, never a
// raw ZodError or the registry's `{ errors: [...] }`.
import { describe, expect, it } from "vitest";
import { call, callJson, newTenant } from "./periphery-helpers.ts";

const PATH = "/v1/registry/repositories";

describe("PUT /v1/registry/repositories", () => {
  it("stores the visibility of a repository in the caller's namespace", async () => {
    const { workspace, token } = await newTenant();
    const body = { repository: `${workspace.name}/app`, public: true };
    expect(await callJson("PUT", PATH, 200, { token, json: body })).toEqual(body);
  });

  it("answers invalid bodies 400 with the shared error shape and the zod issues as details", async () => {
    const { workspace, token } = await newTenant();
    const bad = [
      {},
      { repository: "Not A Repo", public: true },
      { repository: `${workspace.name}/app`, public: "yes" },
      { repository: `${workspace.name}/app`, public: true, extra: 1 },
    ];
    for (const json of bad) {
      const body = await callJson("PUT", PATH, 400, { token, json });
      expect(Object.keys(body)).toEqual(["error"]);
      expect(body.error).toMatchObject({ code: "invalid_request", message: "Request validation failed." });
      expect(Array.isArray(body.error.details)).toBe(true);
    }
    const notJson = await call("PUT", PATH, { token, body: "repository=x", headers: { "content-type": "text/plain" } });
    expect(notJson.status).toBe(415);
    expect((await notJson.json<any>()).error.code).toBe("invalid_request");
  });

  it("keeps workspaces apart and needs images:write", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const theirs = { repository: `${b.workspace.name}/app`, public: true };
    expect((await callJson("PUT", PATH, 404, { token: a.token, json: theirs })).error.code).toBe("not_found");
    const reader = await newTenant(["images:read"]);
    const own = { repository: `${reader.workspace.name}/app`, public: true };
    expect((await callJson("PUT", PATH, 403, { token: reader.token, json: own })).error.code).toBe("forbidden");
    expect((await callJson("PUT", PATH, 401, { token: null, json: own })).error.code).toBe("unauthorized");
  });
});
