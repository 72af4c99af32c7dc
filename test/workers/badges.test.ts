// Badges: SVG and shields.io endpoint JSON from D1 only, status colours, ETag/304, and a
// non-public tag answering exactly like an unknown one.
import { describe, expect, it } from "vitest";
import { badgeStatus, ifNoneMatchHits } from "../../workers/badges/badge.ts";
import type { BuildStatusColumn } from "../../workers/db/schema/builds.ts";
import { call, callJson, insertImage, newTenant, setBuildStatus } from "./periphery-helpers.ts";

async function publicTag(buildStatus: BuildStatusColumn | null, tag = "main") {
  const { workspace, token } = await newTenant();
  const imageId = await insertImage(workspace.id, buildStatus);
  await callJson("PUT", `/v1/tags/${tag}`, 200, { token, json: { imageId, public: true } });
  return { workspace, token, imageId };
}

describe("GET /badges/:workspace/:tag.json", () => {
  it("follows the shields.io endpoint schema v1 with the status colours", async () => {
    const cases: [BuildStatusColumn | null, string, string][] = [
      [null, "passing", "brightgreen"],
      ["succeeded", "passing", "brightgreen"],
      ["waiting", "queued", "lightgrey"],
      ["queued", "queued", "lightgrey"],
      ["dispatching", "queued", "lightgrey"],
      ["running", "building", "blue"],
      ["retrying", "building", "blue"],
      ["failed", "failed", "red"],
      ["timeout", "timeout", "orange"],
      ["cancelled", "cancelled", "lightgrey"],
    ];
    for (const [buildStatus, message, color] of cases) {
      const { workspace } = await publicTag(buildStatus);
      const response = await call("GET", `/badges/${workspace.name}/main.json`, { token: null });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      expect(await response.json()).toEqual({ schemaVersion: 1, label: "build", message, color });
    }
  });

  it("follows the build as its D1 projection changes", async () => {
    const { workspace, imageId } = await publicTag("queued");
    const url = `/badges/${workspace.name}/main.json`;
    expect((await callJson("GET", url, 200, { token: null })).message).toBe("queued");
    await setBuildStatus(imageId, "running");
    expect((await callJson("GET", url, 200, { token: null })).message).toBe("building");
    await setBuildStatus(imageId, "succeeded");
    expect((await callJson("GET", url, 200, { token: null })).message).toBe("passing");
  });
});

describe("GET /badges/:workspace/:tag.svg", () => {
  it("renders an SVG naming the status, for a tag with dots in its name", async () => {
    const { workspace } = await publicTag("failed", "v1.2");
    const response = await call("GET", `/badges/${workspace.name}/v1.2.svg`, { token: null });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/svg+xml; charset=utf-8");
    const svg = await response.text();
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain("build: failed");
    expect(svg).toContain(`fill="#dd4343"`); // badge-maker 6 red
  });
});

describe("ETag and 304", () => {
  it("answers 304 with no body for a matching If-None-Match, and 200 once the status changes", async () => {
    const { workspace, imageId } = await publicTag("running");
    for (const ext of ["svg", "json"]) {
      const url = `/badges/${workspace.name}/main.${ext}`;
      const first = await call("GET", url, { token: null });
      const etag = first.headers.get("etag")!;
      expect(etag).toMatch(/^"[^"]+"$/);
      expect(first.headers.get("cache-control")).toBe("no-cache");
      const again = await call("GET", url, { token: null, headers: { "if-none-match": etag } });
      expect(again.status).toBe(304);
      expect(await again.text()).toBe("");
      expect(again.headers.get("etag")).toBe(etag);
      expect((await call("GET", url, { token: null, headers: { "if-none-match": `"other", W/${etag}` } })).status).toBe(304);
      expect((await call("GET", url, { token: null, headers: { "if-none-match": '"other"' } })).status).toBe(200);
    }
    const svgTag = (await call("GET", `/badges/${workspace.name}/main.svg`, { token: null })).headers.get("etag");
    const jsonTag = (await call("GET", `/badges/${workspace.name}/main.json`, { token: null })).headers.get("etag");
    expect(svgTag).not.toBe(jsonTag);
    await setBuildStatus(imageId, "succeeded");
    const changed = await call("GET", `/badges/${workspace.name}/main.svg`, { token: null, headers: { "if-none-match": svgTag! } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("etag")).not.toBe(svgTag);
  });

  it("matches If-None-Match lists, weak tags and *", () => {
    expect(ifNoneMatchHits('"a", "b"', '"b"')).toBe(true);
    expect(ifNoneMatchHits('W/"b"', '"b"')).toBe(true);
    expect(ifNoneMatchHits("*", '"b"')).toBe(true);
    expect(ifNoneMatchHits('"c"', '"b"')).toBe(false);
    expect(ifNoneMatchHits(undefined, '"b"')).toBe(false);
    expect(badgeStatus("bd-x", null)).toBe("queued");
  });
});

describe("privacy", () => {
  async function snapshot(path: string, ifNoneMatch?: string) {
    const headers: Record<string, string> = { "x-request-id": "fixed-request-id" };
    if (ifNoneMatch) headers["if-none-match"] = ifNoneMatch;
    const response = await call("GET", path, { token: null, headers });
    return { status: response.status, headers: [...response.headers.entries()], body: new Uint8Array(await response.arrayBuffer()) };
  }

  it("answers a private tag byte-for-byte like an unknown tag and an unknown workspace", async () => {
    const { workspace, token } = await newTenant();
    await callJson("PUT", "/v1/tags/secret", 200, { token, json: { imageId: await insertImage(workspace.id, "succeeded") } });
    for (const ext of ["svg", "json"]) {
      const privateTag = await snapshot(`/badges/${workspace.name}/secret.${ext}`);
      const unknownTag = await snapshot(`/badges/${workspace.name}/nothing-here.${ext}`);
      const unknownWorkspace = await snapshot(`/badges/no-such-workspace/secret.${ext}`);
      expect(privateTag.status).toBe(404);
      expect(privateTag).toEqual(unknownTag);
      expect(privateTag).toEqual(unknownWorkspace);
      // Even with a guessed ETag, a private tag does not answer 304.
      expect(await snapshot(`/badges/${workspace.name}/secret.${ext}`, `"badge-v1-${ext}-passing"`)).toEqual(unknownTag);
    }
  });

  it("stops serving a badge when its tag is made private", async () => {
    const { workspace, token, imageId } = await publicTag("succeeded");
    await callJson("GET", `/badges/${workspace.name}/main.json`, 200, { token: null });
    await callJson("PUT", "/v1/tags/main", 200, { token, json: { imageId, public: false } });
    await callJson("GET", `/badges/${workspace.name}/main.json`, 404, { token: null });
  });

  it("refuses malformed paths with 400 and other extensions with 400", async () => {
    const { workspace } = await publicTag(null);
    expect((await call("GET", `/badges/${workspace.name}/main.png`, { token: null })).status).toBe(400);
    expect((await call("GET", `/badges/UPPER/main.svg`, { token: null })).status).toBe(400);
  });
});
