// The workspace view and private image pages (decision 0021), and the one error mapping's HTML
// face: browsers get HTML error pages with the same status, API clients the same JSON as before.
import { env, SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { images } from "../../workers/db/schema/images.ts";
import { tokens } from "../../workers/db/schema/workspaces.ts";
import { prefersHtml } from "../../workers/status-page/error-page.ts";
import { apiJson, chain, newFleet, newTenant, nthJob, ORIGIN, sendEvent, settle, submitImage } from "./helpers.ts";

const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

function browse(path: string, cookie?: string): Promise<Response> {
  return SELF.fetch(`${ORIGIN}${path}`, { headers: { accept: BROWSER_ACCEPT, ...(cookie ? { cookie } : {}) }, redirect: "manual" });
}

async function session(token: string): Promise<string> {
  const minted = await apiJson("POST", "/v1/workspaces/current/page-links", { token, json: {} });
  const response = await SELF.fetch(minted.body.url, { redirect: "manual" });
  expect(response.status).toBe(200);
  return response.headers.get("set-cookie")!.split(";")[0]!;
}

/** Rows of the view: image id, status and the submitter column's text. */
function rowsOf(html: string): { id: string; status: string; by: string; tags: string }[] {
  return [...html.matchAll(/<tr>\s*<td data-label="image"[\s\S]*?<\/tr>/g)].map(([row]) => ({
    id: /<code>(im-[^<]+)<\/code>/.exec(row)![1]!,
    status: /class="status status-([a-z]+)"/.exec(row)![1]!,
    by: /<td data-label="submitted by">([\s\S]*?)<\/td>/.exec(row)![1]!,
    tags: /<td data-label="tags"[^>]*>([\s\S]*?)<\/td>/.exec(row)![1]!,
  }));
}

describe("the workspace view", () => {
  it("lists the workspace's images with status, tags and submitting token, and filters them", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const first = await submitImage(t.token, chain(2));
    await settle(first.body.buildId);
    await nthJob(fleet, 1);
    const second = await submitImage(t.token, chain(1));
    expect([first.status, second.status]).toEqual([202, 202]);
    await settle(second.body.buildId);
    const job = await nthJob(fleet, 2);
    const failure = {
      type: "failed" as const,
      reason: "build",
      message: "RUN false failed",
      layerKey: job.layers[0]!.key,
      exitCode: 1,
      logTail: [],
    };
    const failed2 = await sendEvent(fleet, job, failure);
    expect(failed2.status).toBe(200);
    const tokenRow = (await drizzle(env.DB).select().from(tokens).where(eq(tokens.workspaceId, t.workspaceId)).get())!;
    const stored = await drizzle(env.DB).select().from(images).where(eq(images.id, first.body.id)).get();
    expect(stored?.submittedByTokenId).toBe(tokenRow.id);
    expect((await apiJson("PUT", "/v1/tags/web%3Av1", { token: t.token, json: { imageId: first.body.id, public: true } })).status).toBe(
      200,
    );

    const cookie = await session(t.token);
    const base = `/w/${t.workspaceName}`;
    const all = rowsOf(await (await browse(base, cookie)).text());
    expect(all.map((r) => r.id)).toEqual([second.body.id, first.body.id]);
    expect(all[0]!.status).toBe("failed");
    expect(all[1]!.by).toBe(tokenRow.name);
    expect(all[1]!.tags).toContain("<code>web:v1</code>");

    const failed = rowsOf(await (await browse(`${base}?status=failed`, cookie)).text());
    expect(failed.map((r) => r.id)).toEqual([second.body.id]);
    const tagged = rowsOf(await (await browse(`${base}?tag=web`, cookie)).text());
    expect(tagged.map((r) => r.id)).toEqual([first.body.id]);
    const none = await (await browse(`${base}?tag=nomatch&since=1h`, cookie)).text();
    expect(none).toContain('<p id="empty">');
    // The form keeps its values; a bad filter is a 400 page.
    expect(await (await browse(`${base}?status=failed&since=24h`, cookie)).text()).toContain('<option value="24h" selected>');
    expect((await browse(`${base}?status=bogus`, cookie)).status).toBe(400);

    // Each row links to the private image page, served only to the session.
    const page = await browse(`${base}/images/${second.body.id}`, cookie);
    expect(page.status).toBe(200);
    expect(page.headers.get("cache-control")).toBe("private, no-store");
    const html = await page.text();
    expect(html).toContain(`href="${ORIGIN}${base}"`);
    expect(html).toContain("RUN false failed");
    expect((await browse(`${base}/images/${second.body.id}`)).status).toBe(403);
    expect((await browse(`${base}/images/im-unknown`, cookie)).status).toBe(404);
    // The private image is still unknown on the public page.
    expect((await browse(`/images/${second.body.id}`)).status).toBe(404);
  });
});

describe("HTML error pages for browsers", () => {
  it("answers a browser with an HTML page and API clients with the same JSON as before", async () => {
    const html = await browse("/images/im-doesnotexist");
    expect(html.status).toBe(404);
    expect(html.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(html.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(html.headers.get("vary")).toContain("accept");
    const text = await html.text();
    expect(text).toContain("<h1>404 · Not found</h1>");
    expect(text).toContain("Image not found.");

    for (const accept of [undefined, "application/json", "*/*", "application/json, text/html;q=0.5"]) {
      const response = await SELF.fetch(`${ORIGIN}/images/im-doesnotexist`, { headers: accept ? { accept } : {} });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: { code: "not_found", message: "Image not found." } });
    }
    // Unknown routes, missing tokens and bad input too, with their headers kept.
    expect((await browse("/no/such/page")).headers.get("content-type")).toContain("text/html");
    const unauthorized = await browse("/v1/images");
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("www-authenticate")).toBe('Bearer realm="kiln"');
    expect(await unauthorized.text()).toContain("Missing or invalid API token");
    const bad = await browse(`/images/${"x".repeat(80)}`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("text/html");
  });

  it("escapes what the request put in the message", async () => {
    const response = await browse("/<script>alert(1)</script>");
    expect(response.status).toBe(404);
    const text = await response.text();
    expect(text).not.toContain("<script>alert(1)");
  });

  it("prefers HTML only when text/html outranks JSON", () => {
    expect(prefersHtml(BROWSER_ACCEPT)).toBe(true);
    expect(prefersHtml("text/html")).toBe(true);
    expect(prefersHtml("*/*")).toBe(false);
    expect(prefersHtml(undefined)).toBe(false);
    expect(prefersHtml("application/json")).toBe(false);
    expect(prefersHtml("text/html;q=0.5, application/json")).toBe(false);
    expect(prefersHtml("text/html, application/json")).toBe(false);
    expect(prefersHtml("text/html;q=0")).toBe(false);
  });
});
