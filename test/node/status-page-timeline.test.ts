// The build timeline in real headless Chromium (Debian's `chromium` via playwright-core) on the
// real stack: a 3-layer image whose root layer is a cache hit (built by an earlier build), whose
// second layer is built and whose third fails at `exit 3`. The page, without JavaScript, opens
// with the failure at a glance (step, exit code, the failing command marked, `kiln logs`), draws
// every segment and phase in order with non-zero durations, names the build that produced the
// cached layer, marks the failing step, and groups the log by layer with the failed one open.
// GET /v1/builds/:id/timeline is checked beside it: segments add up to the wall time.
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { BuildTimeline } from "@kiln-build/protocol";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Image, ImageBuildError } from "../../sdk/src/index.ts";
import { useBusyboxWorkspace } from "./busybox-workspace.ts";

const ARTIFACTS = path.resolve(import.meta.dirname, "../../test-artifacts");
const fx = useBusyboxWorkspace("e2e-timeline", { tools: ["chromium"] });
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
}, 60_000);

/** A duration cell's text as milliseconds (`850 ms`, `12.3 s`, `1 min 05 s`). */
function ms(text: string): number {
  const t = text.trim();
  const min = /^(\d+) min (\d+) s$/.exec(t);
  if (min) return (Number(min[1]) * 60 + Number(min[2])) * 1000;
  if (t.endsWith(" ms")) return Number(t.slice(0, -3));
  if (t.endsWith(" s")) return Number(t.slice(0, -2)) * 1000;
  throw new Error(`not a duration: ${t}`);
}

describe("the status page's timeline", { timeout: 600_000 }, () => {
  it("shows a cached layer, a built one and a failing step in order, with the failure at a glance", async () => {
    const marker = `tl-${Date.now()}`;
    const { tenant, stack } = fx;
    // The workspace is this file's own: its root layer is built here first, then a cache hit.
    const root = Image.fromRegistry(fx.base);
    const rootImage = await root.build({ client: tenant.client, logs: false });
    const cached = await tenant.client.json<{ buildId: string }>("GET", ["v1", "images", rootImage.imageId!]);
    const failing = root.runCommands(`echo built-${marker} > /built.txt`).runCommands(`echo failing-${marker}; exit 3`);
    const error = await failing.build({ client: tenant.client, logs: false, tag: "timeline" }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ImageBuildError);
    const failure = error as ImageBuildError;
    expect(failure.exitCode).toBe(3);
    await tenant.client.json("PUT", ["v1", "tags", "timeline"], { json: { imageId: failure.imageId, public: true } });

    // The API: segments back to back, adding up to the wall time; the phases of each built layer.
    const timeline = await tenant.client.json<BuildTimeline>("GET", ["v1", "builds", failure.buildId!, "timeline"]);
    const sum = timeline.segments.reduce((total, s) => total + s.durationMs, 0);
    expect(Math.abs(sum - timeline.wallMs)).toBeLessThanOrEqual(5);
    expect(timeline.layers.map((l) => l.state)).toEqual(["cached", "built", "failed"]);
    expect(timeline.layers[0]!.cachedFrom).toBe(cached.buildId);
    expect(timeline.failedStep).toMatchObject({ layerIndex: 2, exitCode: 3 });
    expect(timeline.failedStep!.line).toContain(`exit 3`);

    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const response = await page.goto(`${stack.url}/images/by-tag/${tenant.workspace}/timeline`);
    expect(response?.status()).toBe(200);
    expect(await page.locator("#status").textContent()).toBe("failed");

    // Failure at a glance, before the timeline: where, the exit code, the marked command, the CLI.
    const glance = page.locator("#failure-glance");
    const glanceText = (await glance.textContent()) ?? "";
    expect(glanceText).toContain("layer 3");
    expect(glanceText).toContain("exit code 3");
    expect(await glance.locator(".failing-line").textContent()).toContain("exit 3");
    expect(await glance.locator("mark").allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining("exit 3")]));
    expect(glanceText).toContain(`kiln logs ${failure.imageId}`);
    const glanceBox = await glance.boundingBox();
    const timelineBox = await page.locator("#timeline").boundingBox();
    expect(glanceBox!.y).toBeLessThan(timelineBox!.y);

    // The build's own segments, in order, from queued to running.
    const segments = page.locator("tr.tl-seg");
    const segmentNames = (await segments.locator("th").allTextContents()).map((t) => t.trim());
    expect(segmentNames[0]).toBe("waiting for layers");
    expect(segmentNames).toContain("dispatching");
    expect(segmentNames.at(-1)).toBe("running");
    expect(await page.locator("tr.tl-dispatching").textContent()).toContain("attempt 1");

    // Layer 1: cached, naming the build that made it; layers 2 and 3: their phases in order.
    const cachedRow = page.locator("tr.tl-cached");
    expect(await cachedRow.count()).toBe(1);
    expect(await cachedRow.textContent()).toContain(`built by build ${cached.buildId}`);
    const phases = page.locator("tr.tl-phase");
    const rows = await phases.evaluateAll((trs) =>
      trs.map((tr) => ({
        name: tr.querySelector("th")?.textContent ?? "",
        detail: tr.querySelector(".tl-detail")?.textContent ?? "",
        start: tr.querySelectorAll(".tl-num")[0]?.textContent ?? "",
        duration: tr.querySelectorAll(".tl-num")[1]?.textContent ?? "",
        failed: tr.classList.contains("tl-failed"),
      })),
    );
    const layer2 = rows.filter((r) => r.name.startsWith("layer 2 ")).map((r) => r.name.replace("layer 2 ", ""));
    const layer3 = rows.filter((r) => r.name.startsWith("layer 3 "));
    expect(layer2.map((name) => name.split(" ")[0])).toEqual(["base", "step", "push"]);
    expect(rows.find((r) => r.name.startsWith("layer 2 step"))!.detail).toContain(`echo built-${marker}`);
    for (const row of rows) expect(ms(row.duration), `${row.name} has a duration`).toBeGreaterThan(0);
    const starts = rows.filter((r) => !r.name.includes("push")).map((r) => ms(r.start.replace("+", "")));
    for (let i = 1; i < starts.length; i++) expect(starts[i]!).toBeGreaterThanOrEqual(starts[i - 1]!);
    // The failing step: highlighted, its line and exit code in words.
    const failed = page.locator("#failing-step");
    expect(await failed.getAttribute("class")).toContain("tl-failed");
    const failedText = (await failed.textContent()) ?? "";
    expect(failedText).toContain(`echo failing-${marker}; exit 3`);
    expect(failedText).toContain("failed");
    expect(failedText).toContain("exit code 3");
    expect(layer3.at(-1)!.failed).toBe(true);
    expect(await page.locator("tr.tl-critical").count()).toBeGreaterThan(0);

    // The log by layer: one group per layer that logged, the failed one open; the raw log stays.
    const open = page.locator("details.log-group[open]");
    expect(await open.count()).toBe(1);
    expect(await open.getAttribute("data-layer")).toBe("3");
    expect(await open.locator("pre").textContent()).toContain(`failing-${marker}`);
    expect(await page.locator("#log").textContent()).toContain(`[3] failing-${marker}`);
    await page.screenshot({ path: path.join(ARTIFACTS, "status-page-timeline.png"), fullPage: true });
    await context.close();
  });
});
