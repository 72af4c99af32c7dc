// The public status page in real headless Chromium (Debian's `chromium` driven by
// playwright-core) against the real stack: the static page without JavaScript (layers,
// digests, badge Markdown, log lines), the live log of a running build with JavaScript, and
// private or unknown images answering the same 404. Screenshots go to test-artifacts/.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import { Image } from "../../sdk/src/index.ts";
import {
  type LocalRunner,
  newWorkspace,
  pushBaseImage,
  requireE2eTools,
  type StackInfo,
  sharedStack,
  startLocalRunner,
  type Tenant,
} from "./e2e-stack.ts";

const ARTIFACTS = path.resolve(import.meta.dirname, "../../test-artifacts");
let stack: StackInfo;
let tenant: Tenant;
let runner: LocalRunner;
let base: string;
let browser: Browser;

beforeAll(async () => {
  requireE2eTools("buildah", "busybox", "chromium");
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "e2e-page");
  [runner, base, browser] = await Promise.all([
    startLocalRunner(stack, tenant),
    busyboxRootfs().then((rootfs) => pushBaseImage(stack, tenant, rootfs, "busybox:1")),
    chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    }),
  ]);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await runner?.stop();
}, 120_000);

/** Points `tag` at `imageId` and makes it public. */
async function publish(tag: string, imageId: string): Promise<void> {
  await tenant.client.json("PUT", ["v1", "tags", tag], { json: { imageId, public: true } });
}

describe("the image status page", { timeout: 600_000 }, () => {
  it("shows layers, digests, the badge Markdown and the log without JavaScript", async () => {
    const marker = `page-${Date.now()}`;
    const image = await Image.fromRegistry(base)
      .runCommands(`echo out-${marker}`, `echo err-${marker} >&2`)
      .env({ PAGE: marker })
      .build({ client: tenant.client, logs: false, tag: "web" });
    await publish("web", image.imageId!);
    const view = await tenant.client.json<{ layers: { digest: string }[] }>("GET", ["v1", "images", image.imageId!]);

    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const tagUrl = `${stack.url}/images/by-tag/${tenant.workspace}/web`;
    const response = await page.goto(tagUrl);
    expect(response?.status()).toBe(200);
    expect(await page.locator("h1").textContent()).toBe(`${tenant.workspace}/web`);
    expect(await page.locator("#status").textContent()).toBe("succeeded");
    const rows = page.locator("#layers tbody tr");
    expect(await rows.count()).toBe(3);
    for (const [i, layer] of view.layers.entries()) {
      expect(await rows.nth(i).textContent()).toContain(layer.digest.slice(0, 19));
    }
    const markdown = `[![kiln: ${tenant.workspace}/web](${stack.url}/badges/${tenant.workspace}/web.svg)](${tagUrl})`;
    expect(await page.locator("pre.snippet").textContent()).toBe(markdown);
    const log = (await page.locator("#log").textContent()) ?? "";
    expect(log).toContain(`[2] out-${marker}`);
    expect(log).toContain(`[2] err-${marker}`);
    expect(log).toContain("[kiln] build succeeded");
    // A finished build's page has one script, the copy buttons'; nothing polls.
    expect(await page.locator("script").count()).toBe(1);
    expect(await page.locator("#live").count()).toBe(0);
    // The badge image is served (same origin, allowed by the page's CSP).
    const badge = await page.request.get(`${stack.url}/badges/${tenant.workspace}/web.svg`);
    expect(badge.headers()["content-type"]).toContain("image/svg+xml");
    await page.screenshot({ path: path.join(ARTIFACTS, "status-page-static.png"), fullPage: true });

    // The same image by id: titled by its id, the same layers.
    await page.goto(`${stack.url}/images/${image.imageId}`);
    expect(await page.locator("h1").textContent()).toBe(image.imageId);
    expect(await page.locator("#layers tbody tr").count()).toBe(3);
    await context.close();
  });

  it("streams a running build's log with JavaScript and shows the final status", async () => {
    const marker = `live-${Date.now()}`;
    const building = Image.fromRegistry(base)
      .runCommands(`echo early-${marker}; sleep 8; echo late-${marker}`)
      .build({ client: tenant.client, logs: false, tag: "live" });
    building.catch(() => undefined);
    let imageId: string | null = null;
    for (let i = 0; imageId === null; i++) {
      if (i > 600) throw new Error("the tag was never written");
      const res = await tenant.client.request("GET", ["v1", "tags", "live"], { accept: [404] });
      imageId = res.status === 200 ? ((await res.json()) as { imageId: string }).imageId : null;
      if (imageId === null) await new Promise((r) => setTimeout(r, 100));
    }
    await publish("live", imageId);

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${stack.url}/images/by-tag/${tenant.workspace}/live`);
    expect(["queued", "building"]).toContain(await page.locator("#status").textContent());
    // A mark on this document: still there after the late line arrived = the script appended
    // it (no reload yet); the script reloads into the final page once the build ended.
    await page.evaluate(() => Object.assign(globalThis, { kilnPageMark: true }));
    await page.locator("#log").getByText(`late-${marker}`).waitFor({ timeout: 300_000 });
    const sameDocument = await page.evaluate(() => (globalThis as { kilnPageMark?: boolean }).kilnPageMark === true);
    expect(sameDocument).toBe(true);
    await page.locator("#status", { hasText: "succeeded" }).waitFor({ timeout: 120_000 });
    expect(await page.locator("#log").textContent()).toContain(`[2] early-${marker}`);
    expect(await page.locator("#live").count()).toBe(0);
    await page.screenshot({ path: path.join(ARTIFACTS, "status-page.png"), fullPage: true });
    await context.close();
    await building;

    const poll = await fetch(`${stack.url}/images/by-tag/${tenant.workspace}/live/logs?cursor=0`);
    const body = (await poll.json()) as { lines: { layer: number | null; stream: string; text: string }[]; cursor: number; done: boolean };
    expect(body.done).toBe(true);
    expect(body.lines).toContainEqual({ layer: 2, stream: "stdout", text: `late-${marker}` });
  });

  it("answers private and unknown images with the same 404", async () => {
    const hidden = await Image.fromRegistry(base)
      .env({ HIDDEN: `${Date.now()}` })
      .build({ client: tenant.client, logs: false, tag: "hidden" });
    const ws = tenant.workspace;
    const paths = [
      `/images/${hidden.imageId}`,
      "/images/im-doesnotexist0000000000000000",
      `/images/by-tag/${ws}/hidden`,
      `/images/by-tag/${ws}/nosuchtag`,
      "/images/by-tag/nosuchworkspace/hidden",
      `/images/${hidden.imageId}/logs`,
      `/images/by-tag/${ws}/hidden/logs`,
    ];
    const answers = await Promise.all(
      paths.map(async (p) => {
        const res = await fetch(`${stack.url}${p}`);
        return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
      }),
    );
    for (const answer of answers) expect(answer).toEqual(answers[0]);
    expect(answers[0]!.status).toBe(404);
    // Made public, the same page appears.
    await publish("hidden", hidden.imageId!);
    expect((await fetch(`${stack.url}/images/${hidden.imageId}`)).status).toBe(200);
  });
});
