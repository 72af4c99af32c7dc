// Tags: point a name at one of the workspace's images, read it back, public flag semantics,
// validation and isolation.
import { describe, expect, it } from "vitest";
import { call, callJson, insertImage, newTenant } from "./periphery-helpers.ts";

describe("PUT /v1/tags/:name", () => {
  it("creates a private tag by default and reads it back", async () => {
    const { workspace, token } = await newTenant();
    const imageId = await insertImage(workspace.id);
    const put = await callJson("PUT", "/v1/tags/main", 200, { token, json: { imageId } });
    expect(put).toEqual({ name: "main", imageId, public: false, reference: null, updatedAt: expect.any(String) });
    expect(await callJson("GET", "/v1/tags/main", 200, { token })).toEqual(put);
  });

  it("moves a tag and keeps its public flag unless told otherwise", async () => {
    const { workspace, token } = await newTenant();
    const first = await insertImage(workspace.id);
    const second = await insertImage(workspace.id);
    await callJson("PUT", "/v1/tags/v1.2.3", 200, { token, json: { imageId: first, public: true } });
    const moved = await callJson("PUT", "/v1/tags/v1.2.3", 200, { token, json: { imageId: second } });
    expect(moved).toMatchObject({ imageId: second, public: true });
    const hidden = await callJson("PUT", "/v1/tags/v1.2.3", 200, { token, json: { imageId: second, public: false } });
    expect(hidden.public).toBe(false);
  });

  it("refuses an image of another workspace or an unknown one with 404, changing nothing", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const theirs = await insertImage(b.workspace.id);
    expect((await callJson("PUT", "/v1/tags/main", 404, { token: a.token, json: { imageId: theirs } })).error.code).toBe("not_found");
    await callJson("PUT", "/v1/tags/main", 404, { token: a.token, json: { imageId: "im-nope" } });
    await callJson("GET", "/v1/tags/main", 404, { token: a.token });
  });

  it("validates names and bodies", async () => {
    const { workspace, token } = await newTenant();
    const imageId = await insertImage(workspace.id);
    for (const name of [".hidden", "-x", "a".repeat(129), "sp%20ace"]) {
      expect((await call("PUT", `/v1/tags/${name}`, { token, json: { imageId } })).status).toBe(400);
    }
    for (const json of [{}, { imageId: 5 }, { imageId, public: "yes" }, { imageId, extra: 1 }]) {
      await callJson("PUT", "/v1/tags/main", 400, { token, json });
    }
    await callJson("PUT", "/v1/tags/main", 413, { token, json: { imageId: "x".repeat(5000) } });
  });

  it("needs tags:write to write and images:read to read", async () => {
    const { workspace, token } = await newTenant(["images:read"]);
    const imageId = await insertImage(workspace.id);
    await callJson("PUT", "/v1/tags/main", 403, { token, json: { imageId } });
    const writer = await newTenant(["tags:write"]);
    await callJson("GET", "/v1/tags/main", 403, { token: writer.token });
    expect((await call("GET", "/v1/tags/main", { token: null })).status).toBe(401);
  });
});

describe("GET /v1/tags/:name", () => {
  it("answers 404 for another workspace's tag of the same name", async () => {
    const a = await newTenant();
    const b = await newTenant();
    await callJson("PUT", "/v1/tags/prod", 200, { token: b.token, json: { imageId: await insertImage(b.workspace.id), public: true } });
    await callJson("GET", "/v1/tags/prod", 404, { token: a.token });
  });
});
