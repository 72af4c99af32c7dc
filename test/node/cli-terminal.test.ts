// Terminal manners end to end: the real `kiln build` (sdk/dist, so run `node scripts/build-packages.ts`
// first) under a pseudo-terminal made by util-linux `script`, on the local stack with a busybox
// base. A terminal that reports 0 columns once made the spinner loop forever writing cursor
// movements (ora divided by the width); now it gets plain lines and the build returns. An 80-column
// terminal gets a status line whose redraws stay at a few hundred bytes a second, and NO_COLOR
// output holds no escape sequence at all, not even the build's own colours.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { shellJoin } from "../../sdk/src/shell-quote.ts";
import { useBusyboxWorkspace } from "./busybox-workspace.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const KILN = path.join(ROOT, "sdk/dist/cli/bin.js");
/** A build that has not returned by then is stuck (the 0-column spinner never returned). */
const DEADLINE_MS = 150_000;
/** "Less than a few KB of output per second of build". */
const MAX_BYTES_PER_SECOND = 3 * 1024;
const ESC = "\x1b";
const fx = useBusyboxWorkspace("cli-terminal", { tools: ["script", "stty"] });
beforeAll(() => {
  if (!existsSync(KILN)) throw new Error(`${KILN} is missing: run \`node scripts/build-packages.ts\` first.`);
});

type Run = { code: number | null; output: string; bytes: number; seconds: number; timedOut: boolean };

/**
 * Runs `kiln build FILE` in a pseudo-terminal of `columns` x 24 (`stty` inside `script`), with
 * `env` on top of a clean terminal environment; resolves to everything the terminal showed.
 */
function kilnInPty(file: string, columns: number, env: Record<string, string> = {}): Promise<Run> {
  const command = `stty cols ${columns} rows ${columns ? 24 : 0} && exec ${shellJoin([process.execPath, KILN, "build", file])}`;
  const { CI: _ci, NO_COLOR: _no, FORCE_COLOR: _force, ...inherited } = process.env;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn("script", ["-qfec", command, "/dev/null"], {
      cwd: fx.work,
      env: { ...inherited, SHELL: "/bin/sh", TERM: "xterm-256color", KILN_SERVER_URL: fx.stack.url, KILN_TOKEN: fx.tenant.token, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, so a stuck build is killed whole (script, the shell, kiln).
      detached: true,
    });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stderr.on("data", (d: Buffer) => chunks.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid!, "SIGKILL");
    }, DEADLINE_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      resolve({ code, output: all.toString("utf8"), bytes: all.byteLength, seconds: (Date.now() - started) / 1000, timedOut });
    });
  });
}

/**
 * A module exporting an image unique to this test (nothing cached): a 6 MiB context, so the
 * upload shows progress, and a RUN step that logs for a few seconds, in colour among others.
 */
function imageModule(name: string): string {
  const marker = `${name}-${Date.now()}`;
  const dir = path.join(fx.work, name);
  mkdirSync(path.join(dir, "files"), { recursive: true });
  writeFileSync(path.join(dir, "files", "note.txt"), `${marker}\n`);
  writeFileSync(path.join(dir, "files", "blob.bin"), randomBytes(6 * 1024 * 1024));
  const run = `echo building ${marker}; printf '\\033[31mred\\033[0m\\n'; for i in 1 2 3 4; do echo step $i; sleep 1; done; cat /files/note.txt > /marker`;
  const sdk = pathToFileURL(path.join(ROOT, "sdk/dist/index.js")).href;
  const file = path.join(dir, "image.ts");
  writeFileSync(
    file,
    [
      `import { Image } from ${JSON.stringify(sdk)};`,
      `export default Image.fromRegistry(${JSON.stringify(fx.base)})`,
      `  .addLocalDir(${JSON.stringify(path.join(dir, "files"))}, "/files", { copy: true })`,
      `  .runCommands(${JSON.stringify(run)});`,
      "",
    ].join("\n"),
  );
  return file;
}

/** The run finished on its own, built the image, and wrote little per second. */
function expectBuiltQuietly(run: Run): void {
  const summary = `${run.bytes} bytes in ${run.seconds.toFixed(1)} s, exit ${run.code}:\n${run.output.slice(-3000)}`;
  expect(run.timedOut, summary).toBe(false);
  expect(run.code, summary).toBe(0);
  expect(run.output, summary).toContain("Built im-");
  expect(run.output, summary).toContain("step 4");
  expect(run.bytes / run.seconds, summary).toBeLessThan(MAX_BYTES_PER_SECOND);
}

/** The output without its line ends: a `\r` left over is a redraw in place. */
const redraws = (output: string) => output.replaceAll("\r\n", "\n").includes("\r");

describe("kiln build in a terminal", { timeout: 300_000 }, () => {
  it("finishes with plain lines on a terminal that reports 0 columns", async () => {
    const run = await kilnInPty(imageModule("zero-columns"), 0);
    expectBuiltQuietly(run);
    expect(redraws(run.output), run.output).toBe(false);
    // Progress for the 6 MiB upload, as lines.
    expect(run.output).toContain("Uploading build contexts: ");
    expect(run.output).toContain("(100%)");
  });

  it("draws a status line at a bounded rate on an 80-column terminal", async () => {
    const run = await kilnInPty(imageModule("eighty-columns"), 80);
    expectBuiltQuietly(run);
    expect(redraws(run.output), run.output).toBe(true);
    expect(run.output).toContain("Building layer");
    // Prefixes dimmed, the build's own colours kept.
    expect(run.output).toMatch(new RegExp(`${ESC}\\[2m\\[\\d+/\\d+\\]${ESC}\\[0m ${ESC}\\[31mred`));
  });

  it("writes no escape sequence with NO_COLOR=1, not even the build's own colours", async () => {
    const run = await kilnInPty(imageModule("no-color"), 80, { NO_COLOR: "1" });
    expectBuiltQuietly(run);
    expect(run.output.includes(`${ESC}[`), JSON.stringify(run.output.slice(0, 2000))).toBe(false);
    expect(run.output).toMatch(/\[\d+\/\d+\] red\r?\n/);
    // Still a status line: redrawn with `\r` and spaces.
    expect(redraws(run.output)).toBe(true);
  });
});
