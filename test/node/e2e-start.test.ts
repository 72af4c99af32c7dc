// `npm start` as a user meets it: one command brings up the orchestrator, the registry, a
// workspace with a token, a runner registered as a fleet and a public badge tag; the printed
// next command (`kiln build examples/local-base.ts`) builds; the CLI lists, shows and fails
// with its documented exit codes; Ctrl-C stops everything; a restart reuses the state.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireE2eTools } from "./e2e-stack.ts";
import { freePort } from "./registry-harness.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
let stateDir: string;
let port: number;
let runnerPort: number;
let url: string;

type Started = { child: ChildProcess; output: () => string; token: string };

/** Runs `npm start`'s script until it prints its summary. */
async function start(): Promise<Started> {
  const child = spawn(process.execPath, [path.join(ROOT, "scripts/start.ts")], {
    cwd: ROOT,
    env: { ...process.env, KILN_PORT: String(port), KILN_RUNNER_PORT: String(runnerPort), KILN_STATE_DIR: stateDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  for (let i = 0; !output.includes("Ctrl-C stops everything"); i++) {
    if (child.exitCode !== null || i > 2400) throw new Error(`npm start did not come up:\n${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const token = /export KILN_TOKEN=(\S+)/.exec(output)?.[1];
  if (!token) throw new Error(`no token in:\n${output}`);
  return { child, output: () => output, token };
}

/** Ctrl-C: SIGINT, then the exit code. */
function interrupt(started: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => started.child.once("exit", (code) => resolve(code)));
  started.child.kill("SIGINT");
  return exited;
}

function kiln(token: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [path.join(ROOT, "sdk/dist/cli/bin.js"), ...args], {
    cwd: ROOT,
    env: { ...process.env, KILN_SERVER_URL: url, KILN_TOKEN: token },
    encoding: "utf8",
    timeout: 300_000,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

const up = (u: string) =>
  fetch(u).then(
    (r) => r.ok,
    () => false,
  );

beforeAll(async () => {
  requireE2eTools("buildah", "busybox");
  stateDir = mkdtempSync(path.join(os.tmpdir(), "kiln-e2e-start-"));
  port = await freePort();
  runnerPort = await freePort();
  url = `http://127.0.0.1:${port}`;
});

afterAll(() => {
  if (!stateDir) return;
  const runner = path.join(stateDir, "kiln-dev/runner");
  spawnSync(
    "buildah",
    ["--root", path.join(runner, "storage"), "--runroot", path.join(runner, "run"), "--storage-driver", "vfs", "rm", "--all"],
    { stdio: "ignore" },
  );
  rmSync(stateDir, { recursive: true, force: true });
});

describe("npm start", { timeout: 900_000 }, () => {
  it("brings up the stack, the printed next command builds, the CLI works, Ctrl-C stops it all, a restart reuses the state", async () => {
    const first = await start();
    const out = first.output();
    expect(out).toContain(`orchestrator  ${url}`);
    expect(out).toContain(`runner        http://127.0.0.1:${runnerPort}`);
    expect(out).toContain(`[![kiln: welcome](${url}/badges/dev/welcome.svg)](${url}/images/by-tag/dev/welcome)`);
    expect(out).toContain("npx kiln build examples/local-base.ts");
    // The public badge tag and its page exist; the registry is the Worker itself.
    expect((await fetch(`${url}/badges/dev/welcome.svg`)).status).toBe(200);
    expect((await fetch(`${url}/images/by-tag/dev/welcome`)).status).toBe(200);
    expect((await fetch(`${url}/v2/`)).status).toBe(401);

    const built = kiln(first.token, "--json", "build", "examples/local-base.ts");
    expect(built.code, built.stderr).toBe(0);
    const result = JSON.parse(built.stdout) as { imageId: string; reference: string; uploadedBytes: number };
    expect(result.reference).toContain(`127.0.0.1:${port}/dev/layers@sha256:`);

    const listed = kiln(first.token, "--json", "images", "ls");
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { id: string; status: string }[])[0]).toMatchObject({ id: result.imageId, status: "succeeded" });
    const status = kiln(first.token, "status", result.imageId);
    expect(status.stdout).toContain(`${result.imageId}  succeeded`);
    const fleets = JSON.parse(kiln(first.token, "--json", "fleet", "ls").stdout) as { url: string }[];
    expect(fleets.map((f) => f.url)).toEqual([`http://127.0.0.1:${runnerPort}/v1/jobs`]);
    expect(kiln(first.token, "badge", "welcome", "--workspace", "dev").stdout.trim()).toBe(
      `[![kiln: welcome](${url}/badges/dev/welcome.svg)](${url}/images/by-tag/dev/welcome)`,
    );
    // Documented exit codes: not found 5, bad token 4, usage 2.
    expect(kiln(first.token, "status", "im-nosuchimage").code).toBe(5);
    const denied = kiln("kiln_api_wrong", "images", "ls");
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain("How to fix:");
    expect(kiln(first.token, "build").code).toBe(2);

    expect(await interrupt(first)).toBe(0);
    expect(first.output()).toContain("stopped everything it started");
    expect(await up(`${url}/healthz`)).toBe(false);
    expect(await up(`http://127.0.0.1:${runnerPort}/healthz`)).toBe(false);

    // Idempotent: the same token, fleet and images after a restart; the rebuild is a cache hit.
    const second = await start();
    expect(second.token).toBe(first.token);
    const again = kiln(second.token, "--json", "build", "examples/local-base.ts");
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ reference: result.reference, uploadedBytes: 0 });
    expect(await interrupt(second)).toBe(0);
  });
});
