// The status page of a multi-platform image: reached by its public tag or its id, it lists each
// platform's status and digest with a link to that platform's image page (public with the
// index), the tags and the push targets; its badge shows the index's status; a private index, its platforms and another
// workspace's name all answer the same 404.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { apiJson, ORIGIN } from "./helpers.ts";
import { completeIndex, platformTenant, submitIndex } from "./index-support.ts";

const page = (path: string) => SELF.fetch(`${ORIGIN}${path}`);

describe("multi-platform image page", () => {
  it("lists every platform with its digest and a working link to its image page, only while a public tag points at it", async () => {
    const t = await platformTenant();
    const index = await submitIndex(t, { tag: "multi:v1", push: [{ reference: "registry.example.com/team/app:v1", secret: null }] });
    const view = await completeIndex(t, index);
    const id = view.body.id as string;
    // Private: nothing is public yet.
    expect((await page(`/images/by-tag/${t.workspaceName}/multi:v1`)).status).toBe(404);
    expect((await page(`/images/${id}`)).status).toBe(404);
    expect((await page(`/images/${view.body.platforms[0].imageId}`)).status).toBe(404);

    expect((await apiJson("PUT", "/v1/tags/multi:v1", { token: t.token, json: { imageId: id, public: true } })).status).toBe(200);
    for (const path of [`/images/by-tag/${t.workspaceName}/multi:v1`, `/images/${id}`]) {
      const response = await page(path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/html");
      expect(response.headers.get("content-security-policy")).toContain("default-src 'none'");
      const html = await response.text();
      expect(html).toContain('<section id="platforms">');
      expect(html).toContain(view.body.digest);
      expect(html).toContain(`kiln.test/${t.workspaceName}/multi:v1`);
      expect(html).toContain('<section id="pushes">');
      expect(html).toContain("registry.example.com/team/app:v1");
      for (const p of view.body.platforms) {
        expect(html).toContain(p.digest);
        expect(html).toContain(`href="${ORIGIN}/images/${p.imageId}"`);
        // The link works: the platform's own page (layers, log) is public with the index.
        const platformPage = await page(`/images/${p.imageId}`);
        expect(platformPage.status).toBe(200);
        expect(await platformPage.text()).toContain('<section id="platforms">');
      }
    }
    // Its badge shows the index's one status.
    const badge = await page(`/badges/${t.workspaceName}/multi:v1.json`);
    expect(badge.status).toBe(200);
    expect(JSON.stringify(await badge.json())).toContain("passing");
    // Another workspace's name with the same tag is the same 404.
    expect((await page(`/images/by-tag/other-${t.workspaceName}/multi:v1`)).status).toBe(404);
    // Made private again, the index and its platforms' pages are gone from the public.
    expect((await apiJson("PUT", "/v1/tags/multi:v1", { token: t.token, json: { imageId: id, public: false } })).status).toBe(200);
    expect((await page(`/images/${id}`)).status).toBe(404);
    expect((await page(`/images/${view.body.platforms[1].imageId}`)).status).toBe(404);
  });

  it("is served to the workspace's browser session while private, linking the session's platform pages", async () => {
    const t = await platformTenant();
    const index = await submitIndex(t);
    const view = await completeIndex(t, index);
    const minted = await apiJson("POST", "/v1/workspaces/current/page-links", { token: t.token, json: {} });
    expect(minted.status).toBe(201);
    const opened = await SELF.fetch(minted.body.url, { headers: { accept: "text/html" }, redirect: "manual" });
    await opened.text();
    const cookie = (opened.headers.get("set-cookie") ?? "").split(";")[0]!;
    const browse = (path: string, withCookie = true) =>
      SELF.fetch(`${ORIGIN}${path}`, { headers: { accept: "text/html", ...(withCookie ? { cookie } : {}) }, redirect: "manual" });
    const own = await browse(`/w/${t.workspaceName}/images/${view.body.id}`);
    expect(own.status).toBe(200);
    expect(own.headers.get("cache-control")).toBe("private, no-store");
    const html = await own.text();
    for (const p of view.body.platforms) {
      expect(html).toContain(`href="${ORIGIN}/w/${t.workspaceName}/images/${p.imageId}"`);
      expect((await browse(`/w/${t.workspaceName}/images/${p.imageId}`)).status).toBe(200);
    }
    // Without the cookie, or for another workspace's index, nothing.
    expect((await browse(`/w/${t.workspaceName}/images/${view.body.id}`, false)).status).not.toBe(200);
    const other = await platformTenant();
    const foreign = await completeIndex(other, await submitIndex(other));
    expect((await browse(`/w/${t.workspaceName}/images/${foreign.body.id}`)).status).toBe(404);
  });
});
