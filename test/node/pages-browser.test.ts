// The pages as a person sees them, in real headless Chromium (Debian's `chromium` driven by
// playwright-core) on the real stack (wrangler dev, a real runner, real buildah builds):
// - the image page and the workspace view at 375 px and 1280 px: no horizontal scroll
//   (document.documentElement.scrollWidth <= innerWidth), axe-core run in the page reports no
//   serious or critical violation, and a screenshot of each is kept as a test artifact in
//   test-artifacts/pages/ (gitignored);
// - `kiln open --print` mints the link; opening it sets an HttpOnly, SameSite=Strict cookie
//   scoped to the workspace and drops the token from the address; used, forged, expired and
//   other-workspace links are refused with an HTML 403; the cookie grants no API access;
// - a browser asking for an unknown image gets an HTML page with status 404.
import { spawn } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Browser, type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Image } from "../../sdk/src/index.ts";
import { checkOpenPage } from "./browser-checks.ts";
import { useBusyboxWorkspace } from "./busybox-workspace.ts";
import { newWorkspace, type Tenant } from "./e2e-stack.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const KILN = path.join(ROOT, "sdk/dist/cli/bin.js");
const WIDTHS = [375, 1280] as const;

const fx = useBusyboxWorkspace("e2e-pages", { tools: ["chromium"] });
let browser: Browser;
let okImage: string;
let failedImage: string;
const TAG = "status-page-with-a-rather-long-name:v1";

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
  });
  // A 3-layer image under a long public tag, and a build that fails at its second step.
  const ok = await Image.fromRegistry(fx.base)
    .runCommands("echo one > /one")
    .runCommands("echo two > /two")
    .build({ client: fx.tenant.client, logs: false, tag: TAG });
  okImage = ok.imageId!;
  await fx.tenant.client.json("PUT", ["v1", "tags", TAG], { json: { imageId: okImage, public: true } });
  await Image.fromRegistry(fx.base)
    .runCommands("echo before-failure", "exit 3")
    .build({ client: fx.tenant.client, logs: false })
    .catch(() => undefined);
  const listed = await fx.tenant.client.json<{ images: { id: string; status: string }[] }>("GET", ["v1", "images"]);
  failedImage = listed.images.find((i) => i.status === "failed")!.id;
}, 600_000);

afterAll(async () => {
  await browser?.close();
});

/** Runs `kiln open --print --json [target]` as a user would; returns the link. */
function kilnOpen(tenant: Tenant, target?: string): Promise<{ url: string; workspace: string; opened: boolean }> {
  const env = { ...process.env, KILN_SERVER_URL: fx.stack.url, KILN_TOKEN: tenant.token, NO_COLOR: "1" };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILN, "--json", "open", "--print", ...(target ? [target] : [])], { env, stdio: "pipe" });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`kiln open exited ${code}: ${err}`))));
  });
}

async function newContext(width: number): Promise<BrowserContext> {
  return browser.newContext({ viewport: { width, height: width < 600 ? 812 : 900 } });
}

describe("pages in a real browser", { timeout: 600_000 }, () => {
  it("the public image page fits and passes axe at 375 and 1280 px", async () => {
    for (const width of WIDTHS) {
      const context = await newContext(width);
      const page = await context.newPage();
      const response = await page.goto(`${fx.stack.url}/images/by-tag/${fx.tenant.workspace}/${encodeURIComponent(TAG)}`);
      expect(response?.status()).toBe(200);
      expect(await page.locator("#status").textContent()).toBe("succeeded");
      expect(await page.locator("#layers tbody tr").count()).toBe(3);
      // The copy buttons come from the page's own script: the CSP hash lets it run.
      expect(await page.locator("button.copy").count()).toBeGreaterThanOrEqual(4);
      // The pinned references are shown whole, wrapped inside the page.
      const reference = page.locator('td[data-label="reference"] code').last();
      const box = (await reference.boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(width);
      expect(await reference.textContent()).toMatch(/@sha256:[0-9a-f]{64}$/);
      await checkOpenPage(page, "image-page", width);
      await context.close();
    }
  });

  it("kiln open signs the browser into the workspace view, which fits and passes axe", async () => {
    for (const width of WIDTHS) {
      const link = await kilnOpen(fx.tenant);
      expect(link.opened).toBe(false);
      const context = await newContext(width);
      const page = await context.newPage();
      await page.goto(link.url);
      await page.waitForURL(`${fx.stack.url}/w/${fx.tenant.workspace}`);
      expect(page.url()).not.toContain("t=");
      const [cookie] = await context.cookies();
      expect(cookie).toMatchObject({ name: "kiln_session", httpOnly: true, sameSite: "Strict", path: `/w/${fx.tenant.workspace}` });
      const rows = page.locator("tbody tr");
      expect(await rows.count()).toBeGreaterThanOrEqual(2);
      const text = (await page.locator("table").textContent()) ?? "";
      expect(text).toContain(okImage);
      expect(text).toContain(failedImage);
      expect(text).toContain(TAG);
      await checkOpenPage(page, "workspace-view", width);

      // Filters narrow the list; rows open the private image page of the session.
      await page.selectOption("#f-status", "failed");
      await page.click("button[type=submit]");
      await page.waitForURL(/status=failed/);
      expect(await page.locator("tbody tr").count()).toBe(1);
      await page.click(`a[href$="/images/${failedImage}"]`);
      await page.waitForURL(`${fx.stack.url}/w/${fx.tenant.workspace}/images/${failedImage}`);
      expect(await page.locator("#status").textContent()).toBe("failed");
      expect(await page.locator("#failure-glance").textContent()).toContain("exit code");
      await checkOpenPage(page, "private-image-page", width);
      await context.close();
    }
  });

  it("refuses used, forged, expired and other-workspace links, and the cookie is not an API credential", async () => {
    const context = await newContext(1280);
    const page = await context.newPage();
    const link = await kilnOpen(fx.tenant);
    await page.goto(link.url);
    await page.waitForURL(`${fx.stack.url}/w/${fx.tenant.workspace}`);
    const session = (await context.cookies())[0]!;

    const refused = async (url: string) => {
      const fresh = await browser.newContext();
      const response = await (await fresh.newPage()).goto(url);
      const result = { status: response?.status(), type: response?.headers()["content-type"], cookies: (await fresh.cookies()).length };
      await fresh.close();
      return result;
    };
    const html403 = { status: 403, type: "text/html; charset=utf-8", cookies: 0 };
    expect(await refused(link.url)).toEqual(html403);
    const forged = await kilnOpen(fx.tenant);
    expect(await refused(`${forged.url.slice(0, -4)}AAAA`)).toEqual(html403);
    const expiring = await fx.tenant.client.json<{ url: string }>("POST", ["v1", "workspaces", "current", "page-links"], {
      json: { expiresInSeconds: 1 },
    });
    await sleep(1500);
    expect(await refused(expiring.url)).toEqual(html403);
    const other = await newWorkspace(fx.stack, "e2e-pages-other");
    const otherLink = await kilnOpen(other);
    expect(await refused(otherLink.url.replace(`/w/${other.workspace}/`, `/w/${fx.tenant.workspace}/`))).toEqual(html403);
    // The other workspace's session does not open this workspace's view.
    await page.goto(otherLink.url);
    await page.waitForURL(`${fx.stack.url}/w/${other.workspace}`);
    const cross = await fetch(`${fx.stack.url}/w/${fx.tenant.workspace}`, {
      headers: { cookie: `kiln_session=${(await context.cookies()).find((c) => c.path === `/w/${other.workspace}`)!.value}` },
    });
    expect(cross.status).toBe(403);
    // The session cookie is no API credential.
    const api = await fetch(`${fx.stack.url}/v1/images`, { headers: { cookie: `kiln_session=${session.value}` } });
    expect(api.status).toBe(401);
    await context.close();
  });

  it("a browser asking for an unknown image gets an HTML 404 page", async () => {
    const context = await newContext(375);
    const page = await context.newPage();
    const response = await page.goto(`${fx.stack.url}/images/im-doesnotexist0000000000000000`);
    expect(response?.status()).toBe(404);
    expect(response?.headers()["content-type"]).toBe("text/html; charset=utf-8");
    expect(await page.locator("h1").textContent()).toBe("404 · Not found");
    await checkOpenPage(page, "not-found", 375);
    // An API client asking the same gets the JSON error, as before.
    const json = await fetch(`${fx.stack.url}/images/im-doesnotexist0000000000000000`);
    expect(await json.json()).toEqual({ error: { code: "not_found", message: "Image not found." } });
    await context.close();
  });
});
