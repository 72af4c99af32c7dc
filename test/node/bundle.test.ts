// The deploy path, offline: `wrangler deploy --dry-run --outdir` builds exactly what
// `npm run deploy` would upload (and validates each environment's config), and the gzipped
// bundle must stay under the Workers paid-plan limit (10 MiB) and under the budget recorded in
// bundle-budget.json, so a heavy dependency shows up in review instead of at deploy time.
//
// After a deliberate growth, record the new size (+25% headroom):
//   KILN_UPDATE_BUNDLE_BUDGET=1 npx vitest run --project node test/node/bundle.test.ts
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const BUDGET_FILE = path.join(import.meta.dirname, "bundle-budget.json");
/** Workers paid plan: 10 MiB after compression (developers.cloudflare.com/workers/platform/limits/). */
const PAID_PLAN_LIMIT_BYTES = 10 * 1024 * 1024;
const HEADROOM = 1.25;

type Budget = { limitBytes: number; measuredGzipBytes: number; budgetGzipBytes: number; measuredAt: string; update: string };

const outRoot = mkdtempSync(path.join(os.tmpdir(), "kiln-bundle-"));
afterAll(() => rmSync(outRoot, { recursive: true, force: true }));

function dryRun(env: string): { outdir: string; status: number | null; output: string } {
  const outdir = path.join(outRoot, env);
  const result = spawnSync(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", outdir, "--env", env], {
    cwd: ROOT,
    // No login, no telemetry, no prompts: this must pass on a machine that never saw Cloudflare.
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` },
    encoding: "utf8",
  });
  return { outdir, status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

/** Gzipped size of what wrangler uploads: every module in the outdir (source maps and notes excluded). */
function uploadedGzipBytes(outdir: string): number {
  let total = 0;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else if (!name.endsWith(".map") && name !== "README.md") total += gzipSync(readFileSync(file)).byteLength;
    }
  };
  walk(outdir);
  return total;
}

describe("deploy dry run", () => {
  it.each(["staging", "production"])(
    "bundles the Worker for %s without credentials",
    (env) => {
      const run = dryRun(env);
      expect(run.status, run.output).toBe(0);
      expect(run.output).toContain("--dry-run: exiting now.");
    },
    120_000,
  );

  it("keeps the gzipped bundle under 10 MiB and under the recorded budget", () => {
    const outdir = path.join(outRoot, "production");
    const gzipBytes = uploadedGzipBytes(outdir);
    expect(gzipBytes).toBeGreaterThan(0);
    expect(gzipBytes, `the gzipped Worker is ${gzipBytes} bytes, over the Workers paid-plan limit`).toBeLessThanOrEqual(
      PAID_PLAN_LIMIT_BYTES,
    );
    if (process.env.KILN_UPDATE_BUNDLE_BUDGET === "1") {
      const budget: Budget = {
        limitBytes: PAID_PLAN_LIMIT_BYTES,
        measuredGzipBytes: gzipBytes,
        budgetGzipBytes: Math.min(PAID_PLAN_LIMIT_BYTES, Math.ceil(gzipBytes * HEADROOM)),
        measuredAt: new Date().toISOString().slice(0, 10),
        update: "KILN_UPDATE_BUNDLE_BUDGET=1 npx vitest run --project node test/node/bundle.test.ts",
      };
      writeFileSync(BUDGET_FILE, `${JSON.stringify(budget, null, 2)}\n`);
    }
    const budget = JSON.parse(readFileSync(BUDGET_FILE, "utf8")) as Budget;
    expect(
      gzipBytes,
      `the gzipped Worker grew to ${gzipBytes} bytes, past the budget of ${budget.budgetGzipBytes} (measured ${budget.measuredGzipBytes} on ${budget.measuredAt}). If the growth is intended: ${budget.update}`,
    ).toBeLessThanOrEqual(budget.budgetGzipBytes);
  });
});
