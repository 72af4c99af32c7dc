// The checks a Kiln page gets in real headless Chromium (Debian's `chromium` driven by
// playwright-core), as in pages-browser.test.ts: at 375 and 1280 px no sideways scroll
// (scrollWidth <= innerWidth), no serious or critical axe-core violation, and a screenshot kept
// under test-artifacts/pages/ (gitignored).
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium, type Page } from "playwright-core";
import { expect } from "vitest";

const ARTIFACTS = path.resolve(import.meta.dirname, "../../test-artifacts/pages");
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Opens `url` at each width in a fresh browser and checks layout and accessibility; `name` names the screenshots. */
export async function checkPageInBrowser(url: string, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
  });
  try {
    for (const width of [375, 1280]) {
      const context = await browser.newContext({ viewport: { width, height: width < 600 ? 812 : 900 } });
      const page = await context.newPage();
      const response = await page.goto(url);
      expect(response?.status(), `${name} at ${width}px`).toBe(200);
      await checkOpenPage(page, name, width, { fullPage: true });
      await context.close();
    }
  } finally {
    await browser.close();
  }
}

/** The checks of a page already loaded at `width`: no sideways scroll, no serious or critical axe violation, a screenshot. */
export async function checkOpenPage(page: Page, name: string, width: number, options: { fullPage?: boolean } = {}): Promise<void> {
  const widths = await page.evaluate<{ scroll: number; inner: number }>(
    "({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })",
  );
  expect(widths.scroll, `${name} at ${width}px scrolls sideways`).toBeLessThanOrEqual(widths.inner);
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const result = await (globalThis as unknown as { axe: { run(): Promise<{ violations: any[] }> } }).axe.run();
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n: any) => n.target.join(" ")).slice(0, 3) }));
  });
  expect(
    violations.filter((v) => v.impact === "serious" || v.impact === "critical"),
    `${name} at ${width}px`,
  ).toEqual([]);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${width}.png`), fullPage: options.fullPage ?? false });
}
