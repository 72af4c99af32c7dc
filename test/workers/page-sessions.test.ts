// Browser sessions (decision 0021) through the Worker's own fetch: a page link minted with an
// API token opens the workspace's pages once; expired, forged, reused, other-workspace links
// and links of revoked tokens are refused with the one 403; the cookie is HttpOnly,
// SameSite=Strict, Path-scoped and Secure on https, and grants nothing under /v1.
import { env, SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { LinkClaims, SessionClaims, signPageToken, verifyPageToken } from "../../workers/auth/page-session.ts";
import { tokens } from "../../workers/db/schema/workspaces.ts";
import { api, apiJson, newTenant, ORIGIN } from "./helpers.ts";

const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

type Tenant = Awaited<ReturnType<typeof newTenant>>;

async function mint(t: Tenant, body: Record<string, unknown> = {}): Promise<{ url: string; expiresAt: string; workspace: string }> {
  const minted = await apiJson("POST", "/v1/workspaces/current/page-links", { token: t.token, json: body });
  expect(minted.status).toBe(201);
  expect(minted.headers.get("cache-control")).toBe("no-store");
  return minted.body;
}

function browse(url: string, cookie?: string): Promise<Response> {
  const headers: Record<string, string> = { accept: BROWSER_ACCEPT };
  if (cookie) headers.cookie = cookie;
  return SELF.fetch(url.startsWith("http") ? url : `${ORIGIN}${url}`, { headers, redirect: "manual" });
}

/** Opens a link; returns the session cookie pair (`kiln_session=...`) and the Set-Cookie line. */
async function exchange(url: string): Promise<{ cookie: string; setCookie: string; html: string }> {
  const response = await browse(url);
  const html = await response.text();
  expect(response.status, html).toBe(200);
  const setCookie = response.headers.get("set-cookie") ?? "";
  return { cookie: setCookie.split(";")[0]!, setCookie, html };
}

describe("page links and sessions", () => {
  it("a link opens the workspace view once, with a locked-down cookie", async () => {
    const t = await newTenant(["images:read"]);
    const link = await mint(t);
    expect(link.workspace).toBe(t.workspaceName);
    expect(link.url).toMatch(new RegExp(`^${ORIGIN}/w/${t.workspaceName}/open\\?t=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$`));
    expect(Date.parse(link.expiresAt) - Date.now()).toBeLessThanOrEqual(120_000);

    const { cookie, setCookie, html } = await exchange(link.url);
    expect(setCookie).toMatch(/^kiln_session=[A-Za-z0-9_.-]+; /);
    for (const attribute of [`Path=/w/${t.workspaceName}`, "HttpOnly", "SameSite=Strict", "Secure", "Max-Age=28800"])
      expect(setCookie).toContain(attribute);
    // The token leaves the address at once: the page moves on to the view by itself.
    expect(html).toContain(`<meta http-equiv="refresh" content="0; url=/w/${t.workspaceName}">`);

    const view = await browse(`/w/${t.workspaceName}`, cookie);
    expect(view.status).toBe(200);
    expect(view.headers.get("cache-control")).toBe("private, no-store");
    expect(view.headers.get("referrer-policy")).toBe("no-referrer");
    expect(await view.text()).toContain(`<h1>${t.workspaceName}</h1>`);

    // Used once: the second exchange is refused, as an HTML page for a browser.
    const again = await browse(link.url);
    expect(again.status).toBe(403);
    expect(again.headers.get("content-type")).toContain("text/html");
    expect(again.headers.get("set-cookie")).toBeNull();
    expect(await again.text()).toContain("session_required");
  });

  it("refuses expired, forged and malformed links and sessions alike", async () => {
    const t = await newTenant(["images:read"]);
    const tokenId = (await drizzle(env.DB).select({ id: tokens.id }).from(tokens).where(eq(tokens.workspaceId, t.workspaceId)).get())!.id;
    const base = `/w/${t.workspaceName}`;
    const claims = { v: 1 as const, ws: t.workspaceId, tok: tokenId, jti: "A".repeat(22), next: base };
    const expired = await signPageToken(env, "link", { ...claims, exp: Date.now() - 1 });
    const valid = (await mint(t)).url.split("?t=")[1]!;
    const [body, mac] = valid.split(".");
    const tamperedClaims = btoa(JSON.stringify({ ...claims, jti: "B".repeat(22), exp: Date.now() + 60_000 })).replace(/=+$/, "");
    const refused = [
      expired,
      `${body}.${mac!.slice(0, -2)}AA`,
      `${tamperedClaims}.${mac}`,
      "not-a-token",
      `${body}.${mac}.extra`,
      // A session token is not a link (another key), nor a link a session.
      await signPageToken(env, "session", { v: 1, ws: t.workspaceId, tok: tokenId, exp: Date.now() + 60_000 }),
    ];
    for (const token of refused) {
      const response = await api("GET", `${base}/open?t=${encodeURIComponent(token)}`);
      expect(response.status, token).toBe(403);
      expect((await response.json<{ error: { code: string } }>()).error.code).toBe("session_required");
    }
    const sessions = [
      await signPageToken(env, "session", { v: 1, ws: t.workspaceId, tok: tokenId, exp: Date.now() - 1 }),
      await signPageToken(env, "link", { ...claims, exp: Date.now() + 60_000 }),
      "garbage",
    ];
    for (const session of sessions) expect((await browse(base, `kiln_session=${session}`)).status).toBe(403);
    expect((await browse(base)).status).toBe(403);
    // The valid link was never used above, so it still works.
    expect((await browse(`${base}/open?t=${valid}`)).status).toBe(200);
  });

  it("verifies signatures and expiry in the pure core", async () => {
    const claims = { v: 1 as const, ws: "w", tok: "t", exp: 2_000 };
    const token = await signPageToken(env, "session", claims);
    expect(await verifyPageToken(env, "session", SessionClaims, token, 1_999)).toEqual(claims);
    expect(await verifyPageToken(env, "session", SessionClaims, token, 2_000)).toBeNull();
    expect(await verifyPageToken(env, "link", LinkClaims, token, 1_000)).toBeNull();
    expect(await verifyPageToken(env, "session", SessionClaims, "x".repeat(5000), 0)).toBeNull();
  });

  it("never crosses workspaces", async () => {
    const a = await newTenant(["images:read"]);
    const b = await newTenant(["images:read"]);
    const bLink = await mint(b);
    // B's link presented at A's address is refused (and stays unused for B).
    const token = bLink.url.split("?t=")[1]!;
    expect((await browse(`/w/${a.workspaceName}/open?t=${token}`)).status).toBe(403);
    const { cookie, setCookie } = await exchange(bLink.url);
    expect(setCookie).toContain(`Path=/w/${b.workspaceName};`);
    expect((await browse(`/w/${b.workspaceName}`, cookie)).status).toBe(200);
    expect((await browse(`/w/${a.workspaceName}`, cookie)).status).toBe(403);
    // A's image through B's session: the session names B, so A's page is refused.
    const image = await apiJson("GET", "/v1/images", { token: a.token });
    expect(image.status).toBe(200);
    expect((await browse(`/w/${a.workspaceName}/images/im-whatever`, cookie)).status).toBe(403);
  });

  it("the cookie grants no API access, and revoking the token ends the session", async () => {
    const t = await newTenant(["images:read", "tokens:write"]);
    const { cookie } = await exchange((await mint(t)).url);
    const asApi = await SELF.fetch(`${ORIGIN}/v1/images`, { headers: { cookie } });
    expect(asApi.status).toBe(401);
    expect((await browse(`/w/${t.workspaceName}`, cookie)).status).toBe(200);
    const mine = await apiJson<{ tokens: { id: string }[] }>("GET", "/v1/tokens", { token: t.token });
    for (const token of mine.body.tokens) expect((await api("DELETE", `/v1/tokens/${token.id}`, { token: t.token })).status).toBe(200);
    expect((await browse(`/w/${t.workspaceName}`, cookie)).status).toBe(403);
  });

  it("minting needs images:read, and a named image must be the workspace's", async () => {
    const t = await newTenant(["secrets:read"]);
    expect((await apiJson("POST", "/v1/workspaces/current/page-links", { token: t.token, json: {} })).status).toBe(403);
    expect((await apiJson("POST", "/v1/workspaces/current/page-links", { json: {} })).status).toBe(401);
    const r = await newTenant(["images:read"]);
    const unknown = await apiJson("POST", "/v1/workspaces/current/page-links", { token: r.token, json: { imageId: "im-nope" } });
    expect(unknown.status).toBe(404);
    const bad = await apiJson("POST", "/v1/workspaces/current/page-links", { token: r.token, json: { expiresInSeconds: 601 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_request");
  });
});
