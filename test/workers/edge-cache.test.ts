// Edge caching of public badges (Cache API): final statuses are served from the edge without
// D1, live ones never are (so a finished build shows at once), a tag write purges, and the
// client still sees `no-cache` with ETag/304.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  EDGE_TTL_HEADER,
  edgeCacheKey,
  edgeTtlFor,
  FINAL_TTL_SECONDS,
  invalidateImageCaches,
  tagPagePaths,
} from "../../workers/edge-cache.ts";
import { call, callJson, insertImage, newTenant, setBuildStatus } from "./periphery-helpers.ts";

async function publicTag(buildStatus: Parameters<typeof insertImage>[1], tag = "main") {
  const tenant = await newTenant();
  const imageId = await insertImage(tenant.workspace.id, buildStatus);
  await callJson("PUT", `/v1/tags/${tag}`, 200, { token: tenant.token, json: { imageId, public: true } });
  return { ...tenant, imageId };
}

async function badge(workspace: string, ext = "json", headers: Record<string, string> = {}) {
  const response = await call("GET", `/badges/${workspace}/main.${ext}`, { token: null, headers });
  return { status: response.status, cache: response.headers.get("x-kiln-cache"), headers: response.headers, text: await response.text() };
}

describe("edge cache keys and TTLs", () => {
  it("keys pages under the Worker's own origin and lists a tag's pages", () => {
    expect(edgeCacheKey("https://kiln.example.com", "/badges/acme/main.svg")).toBe(
      "https://kiln.example.com/__kiln-edge/badges/acme/main.svg",
    );
    expect(tagPagePaths("acme", "v1.2")).toEqual(["/badges/acme/v1.2.svg", "/badges/acme/v1.2.json", "/images/by-tag/acme/v1.2"]);
    // A `NAME:TAG` tag is purged under the key its page is served under, however the path was encoded.
    const [, , page] = tagPagePaths("acme", "team/app:v1");
    for (const served of ["/images/by-tag/acme/team%2Fapp:v1", "/images/by-tag/acme/team%2Fapp%3Av1"]) {
      expect(edgeCacheKey("https://kiln.example.com", served)).toBe(edgeCacheKey("https://kiln.example.com", page!));
    }
  });

  it("never caches a status that can still change", () => {
    expect(edgeTtlFor("queued")).toBe(0);
    expect(edgeTtlFor("building")).toBe(0);
    for (const status of ["passing", "failed", "timeout", "cancelled"]) expect(edgeTtlFor(status)).toBe(FINAL_TTL_SECONDS);
  });
});

describe("badges at the edge", () => {
  it("serves a final badge from the edge: the second read does not consult D1", async () => {
    const { workspace, imageId } = await publicTag("succeeded");
    const first = await badge(workspace.name);
    expect(first).toMatchObject({ status: 200, cache: "miss" });
    expect(first.headers.get("cache-control")).toBe("no-cache");
    expect(first.headers.has(EDGE_TTL_HEADER)).toBe(false);
    // Changed behind the Worker's back (no API call, so no purge): the edge copy still answers.
    await setBuildStatus(imageId, "failed");
    const second = await badge(workspace.name);
    expect(second).toMatchObject({ status: 200, cache: "hit", text: first.text });
    expect(second.headers.get("cache-control")).toBe("no-cache");
    expect(second.headers.get("etag")).toBe(first.headers.get("etag"));
    expect(second.headers.has(EDGE_TTL_HEADER)).toBe(false);
  });

  it("answers If-None-Match with 304 from the edge copy", async () => {
    const { workspace } = await publicTag("failed");
    const first = await badge(workspace.name, "svg");
    const etag = first.headers.get("etag")!;
    const again = await badge(workspace.name, "svg", { "if-none-match": etag });
    expect(again).toMatchObject({ status: 304, cache: "hit", text: "" });
    expect(again.headers.get("etag")).toBe(etag);
  });

  it("shows a finished build at once: a running build's badge is never cached", async () => {
    const { workspace, imageId } = await publicTag("running");
    expect(await badge(workspace.name)).toMatchObject({ status: 200, cache: "miss" });
    expect(await badge(workspace.name)).toMatchObject({ status: 200, cache: "miss" });
    await setBuildStatus(imageId, "succeeded");
    const done = await badge(workspace.name);
    expect(done).toMatchObject({ status: 200, cache: "miss" });
    expect(JSON.parse(done.text).message).toBe("passing");
    expect(await badge(workspace.name)).toMatchObject({ cache: "hit" });
  });

  it("purges a tag's badges when the tag moves or turns private", async () => {
    const { workspace, token } = await publicTag("succeeded");
    expect(await badge(workspace.name)).toMatchObject({ cache: "miss" });
    expect(await badge(workspace.name)).toMatchObject({ cache: "hit" });
    const failedImage = await insertImage(workspace.id, "failed");
    await callJson("PUT", "/v1/tags/main", 200, { token, json: { imageId: failedImage } });
    const moved = await badge(workspace.name);
    expect(moved).toMatchObject({ status: 200, cache: "miss" });
    expect(JSON.parse(moved.text).message).toBe("failed");
    await callJson("PUT", "/v1/tags/main", 200, { token, json: { imageId: failedImage, public: false } });
    expect((await badge(workspace.name)).status).toBe(404);
  });

  it("invalidateImageCaches purges an image's tag pages (for callers that write tags)", async () => {
    const { workspace, imageId } = await publicTag("succeeded");
    await badge(workspace.name);
    await badge(workspace.name, "svg");
    expect(await badge(workspace.name)).toMatchObject({ cache: "hit" });
    await setBuildStatus(imageId, "cancelled");
    // Tags looked up in D1 when not given; no ExecutionContext: the purge is awaited.
    await invalidateImageCaches(env, undefined, { origin: "https://kiln.test", workspace: workspace.name, imageId });
    const json = await badge(workspace.name);
    expect(json).toMatchObject({ cache: "miss" });
    expect(JSON.parse(json.text).message).toBe("cancelled");
    expect((await badge(workspace.name, "svg")).text).toContain("build: cancelled");
  });

  it("does not cache 404s, so a tag made public shows at once", async () => {
    const { workspace, token } = await newTenant();
    const imageId = await insertImage(workspace.id, "succeeded");
    await callJson("PUT", "/v1/tags/main", 200, { token, json: { imageId } });
    expect((await badge(workspace.name)).status).toBe(404);
    // Made public behind the Worker's back (no purge): only an uncached 404 lets this show.
    await env.DB.prepare("UPDATE tags SET public = 1 WHERE workspace_id = ? AND name = 'main'").bind(workspace.id).run();
    expect(await badge(workspace.name)).toMatchObject({ status: 200, cache: "miss" });
  });
});
