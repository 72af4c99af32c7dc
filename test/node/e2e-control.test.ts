// End to end on the real stack, busybox base: controlling a build from the SDK and the CLI.
// An AbortSignal cancels a running build (the runner stops its step); Ctrl-C during
// `kiln build` asks the server to cancel; `kiln logs` takes an image or a tag and, for a
// cache hit, shows the build that produced its layers.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { Image, ImageBuildError } from "../../sdk/src/index.ts";
import { useBusyboxWorkspace } from "./busybox-workspace.ts";
import { descendantPids } from "./e2e-stack.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const KILN = path.join(ROOT, "sdk/dist/cli/bin.js");
const fx = useBusyboxWorkspace("e2e-control");

/** Whether the runner has a `sleep 120` step running under it. */
function sleeping(): boolean {
  return descendantPids(fx.runner.process.pid!).some((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim() === "sleep 120";
    } catch {
      return false;
    }
  });
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${fx.runner.log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const stderrs = new WeakMap<ChildProcess, string>();
const stderrOf = (child: ChildProcess) => stderrs.get(child) ?? "";

/** Spawns `kiln ...`; `done` resolves to its exit code and output. */
function kiln(args: string[]): { child: ChildProcess; done: Promise<{ code: number; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [KILN, ...args], {
    cwd: fx.work,
    env: { ...process.env, KILN_SERVER_URL: fx.stack.url, KILN_TOKEN: fx.tenant.token },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    stderrs.set(child, stderr);
  });
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
  });
  return { child, done };
}

function imageModule(name: string, steps: string[]): string {
  const sdk = pathToFileURL(path.join(ROOT, "sdk/dist/index.js")).href;
  const file = path.join(fx.work, `${name}.ts`);
  writeFileSync(
    file,
    `import { Image } from ${JSON.stringify(sdk)};\nexport default Image.fromRegistry(${JSON.stringify(fx.base)}).runCommands(${steps.map((s) => JSON.stringify(s)).join(", ")});\n`,
  );
  return file;
}

describe("controlling builds", { timeout: 600_000 }, () => {
  it("an AbortSignal cancels the build: it ends cancelled and the runner stops the step", async () => {
    const controller = new AbortController();
    const image = Image.fromRegistry(fx.base).runCommands(`echo abort ${Date.now()}`, "sleep 120");
    const result = image.build({ client: fx.tenant.client, logs: false, signal: controller.signal, timeoutSeconds: 600 }).then(
      () => null,
      (e: unknown) => e,
    );
    await until(sleeping, 180_000, "the sleep step to start");
    const abortedAt = Date.now();
    controller.abort();
    const error = await result;
    expect(error).toBeInstanceOf(ImageBuildError);
    expect((error as ImageBuildError).reason).toBe("cancelled");
    const view = await fx.tenant.client.json<{ status: string }>("GET", ["v1", "images", (error as ImageBuildError).imageId]);
    expect(view.status).toBe("cancelled");
    await until(() => !sleeping(), 60_000, "the runner to stop the step");
    expect(Date.now() - abortedAt).toBeLessThan(110_000);
  });

  it("Ctrl-C during `kiln build` cancels the build on the server and says so", async () => {
    const file = imageModule("interrupted", [`echo interrupt ${Date.now()}`, "sleep 120"]);
    const { child, done } = kiln(["build", file, "--timeout", "600"]);
    await until(sleeping, 180_000, "the sleep step to start");
    child.kill("SIGINT");
    const cli = await done;
    expect(cli.stderr).toContain("Cancelling the build on the server");
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/cancelled/);
    await until(() => !sleeping(), 60_000, "the runner to stop the step");
  });

  it("a second Ctrl-C exits at once, leaving the build to the server, and says so", async () => {
    const file = imageModule("interrupted-twice", [`echo interrupt twice ${Date.now()}`, "sleep 120"]);
    const { child, done } = kiln(["build", file]);
    await until(sleeping, 180_000, "the sleep step to start");
    child.kill("SIGINT");
    await until(() => child.exitCode !== null || /Cancelling the build/.test(stderrOf(child)), 10_000, "the first Ctrl-C's notice");
    const second = Date.now();
    child.kill("SIGINT");
    const cli = await done;
    expect(Date.now() - second).toBeLessThan(5_000);
    expect(cli.code).toBe(130);
    expect(cli.stderr).toContain("Exiting without waiting; the build may keep running on the server");
    await until(() => !sleeping(), 60_000, "the runner to stop the step (the first Ctrl-C's cancel)");
  });

  it("`kiln build --timeout` refuses a limit the server would not accept", async () => {
    const file = imageModule("timeout", ["true"]);
    const cli = await kiln(["build", file, "--timeout", "5"]).done;
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain("timeoutSeconds must be a whole number of seconds from 60 to 86400");
  });

  it("`kiln logs` takes an image or a tag, and shows a cache hit's layers' build", async () => {
    const marker = `logged-${Date.now()}`;
    const define = () => Image.fromRegistry(fx.base).runCommands(`echo ${marker}`);
    const first = await define().build({ client: fx.tenant.client, logs: false });
    const tag = `control-${Date.now()}`;
    const hit = await define().build({ client: fx.tenant.client, logs: false, tag });
    expect(hit.imageId).not.toBe(first.imageId);
    const hitView = await fx.tenant.client.json<{ buildId: string | null }>("GET", ["v1", "images", hit.imageId!]);
    expect(hitView.buildId).toBeNull();
    for (const target of [first.imageId!, hit.imageId!, tag]) {
      const cli = await kiln(["logs", target]).done;
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout).toContain(marker);
    }
    const cli = await kiln(["logs", hit.imageId!]).done;
    expect(cli.stderr).toContain("was served from the cache");
  });
});
