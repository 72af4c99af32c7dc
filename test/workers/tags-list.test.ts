// `GET /v1/tags` (the workspace's tags by name, paged) and `DELETE /v1/tags/:name`: scopes,
// validation, the shared error shape and workspace isolation (another workspace's tag is 404).
import { describe, expect, it } from "vitest";
import { call, callJson, insertImage, newTenant } from "./periphery-helpers.ts";

async function tenantWithTags(names: string[], isPublic = false) {
  const tenant = await newTenant();
  const imageId = await insertImage(tenant.workspace.id);
  for (const name of names) await callJson("PUT", `/v1/tags/${name}`, 200, { token: tenant.token, json: { imageId, public: isPublic } });
  return { ...tenant, imageId };
}

describe("GET /v1/tags", () => {
  it("lists only the workspace's own tags, by name, with name, imageId, public, reference and updatedAt", async () => {
    const a = await tenantWithTags(["main", "dev", "v1.0"]);
    await tenantWithTags(["main", "other-only"]);
    const list = await callJson("GET", "/v1/tags", 200, { token: a.token });
    expect(list.tags.map((t: { name: string }) => t.name)).toEqual(["dev", "main", "v1.0"]);
    expect(list.tags[0]).toEqual({ name: "dev", imageId: a.imageId, public: false, reference: null, updatedAt: expect.any(String) });
    expect(new Date(list.tags[0].updatedAt).toISOString()).toBe(list.tags[0].updatedAt);
    expect(list.nextCursor).toBeNull();
    expect((await callJson("GET", "/v1/tags", 200, { token: (await newTenant()).token })).tags).toEqual([]);
  });

  it("pages with limit and nextCursor, nothing lost or repeated", async () => {
    const names = ["a1", "a2", "b1", "b2", "c1"];
    const { token } = await tenantWithTags(names);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? "?limit=2" : `?limit=2&cursor=${cursor}`;
      const page: { tags: { name: string }[]; nextCursor: string | null } = await callJson("GET", `/v1/tags${query}`, 200, { token });
      seen.push(...page.tags.map((t) => t.name));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null);
    expect(seen).toEqual(names);
    expect(pages).toBe(3);
  });

  it("validates the query with the shared error shape", async () => {
    const { token } = await newTenant();
    for (const query of ["?limit=0", "?limit=1001", "?limit=x", "?cursor=.bad"]) {
      const body = await callJson("GET", `/v1/tags${query}`, 400, { token });
      expect(body.error).toMatchObject({ code: "invalid_request", message: expect.any(String) });
    }
  });

  it("needs images:read, and an admin token must name a workspace", async () => {
    const writer = await newTenant(["tags:write"]);
    expect((await callJson("GET", "/v1/tags", 403, { token: writer.token })).error.code).toBe("forbidden");
    expect((await callJson("GET", "/v1/tags", 401, { token: null })).error.code).toBe("unauthorized");
    expect((await callJson("GET", "/v1/tags", 400, {})).error.code).toBe("invalid_request");
    const a = await tenantWithTags(["main"]);
    expect((await callJson("GET", "/v1/tags", 200, { workspace: a.workspace.name })).tags).toHaveLength(1);
  });
});

describe("DELETE /v1/tags/:name", () => {
  it("deletes the tag (the image stays) and then answers 404", async () => {
    const { token, imageId } = await tenantWithTags(["main", "keep"]);
    expect(await callJson("DELETE", "/v1/tags/main", 200, { token })).toEqual({ ok: true });
    await callJson("GET", "/v1/tags/main", 404, { token });
    expect((await callJson("GET", "/v1/tags", 200, { token })).tags.map((t: { name: string }) => t.name)).toEqual(["keep"]);
    expect((await callJson("GET", `/v1/images/${imageId}`, 200, { token })).id).toBe(imageId);
    expect((await callJson("DELETE", "/v1/tags/main", 404, { token })).error.code).toBe("not_found");
  });

  it("takes a public tag's badge down with it", async () => {
    const { workspace, token } = await tenantWithTags(["main"], true);
    const badge = `/badges/${workspace.name}/main.json`;
    expect((await call("GET", badge, { token: null })).status).toBe(200);
    await callJson("DELETE", "/v1/tags/main", 200, { token });
    expect((await call("GET", badge, { token: null })).status).toBe(404);
  });

  it("answers 404 for another workspace's tag and leaves it alone", async () => {
    const a = await newTenant();
    const b = await tenantWithTags(["prod"]);
    expect((await callJson("DELETE", "/v1/tags/prod", 404, { token: a.token })).error.code).toBe("not_found");
    await callJson("GET", "/v1/tags/prod", 200, { token: b.token });
  });

  it("needs tags:write and a valid name", async () => {
    const b = await tenantWithTags(["main"]);
    const reader = await newTenant(["images:read"]);
    expect((await callJson("DELETE", "/v1/tags/main", 403, { token: reader.token })).error.code).toBe("forbidden");
    expect((await call("DELETE", "/v1/tags/main", { token: null })).status).toBe(401);
    expect((await callJson("DELETE", "/v1/tags/.hidden", 400, { token: b.token })).error.code).toBe("invalid_request");
    await callJson("GET", "/v1/tags/main", 200, { token: b.token });
  });
});
