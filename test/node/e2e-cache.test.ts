// End to end on the real stack, busybox base: two `kiln build` processes submitting the same
// uncached image at once share one build; a resubmission is a cache hit that uploads nothing;
// forceBuild rebuilds; a failing RUN step raises ImageBuildError with its exit code.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { Image, ImageBuildError } from "../../sdk/src/index.ts";
import { useBusyboxWorkspace } from "./busybox-workspace.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const KILN = path.join(ROOT, "sdk/dist/cli/bin.js");
const fx = useBusyboxWorkspace("e2e-cache", { concurrency: 2 });

type ImageView = { id: string; status: string; buildId: string | null; mode: string; layers: { cached: boolean; digest: string | null }[] };
const view = (id: string) => fx.tenant.client.json<ImageView>("GET", ["v1", "images", id]);

/** Runs `kiln ...` as its own process; resolves to its exit code and output. */
function kiln(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILN, ...args], {
      cwd: fx.work,
      env: { ...process.env, KILN_SERVER_URL: fx.stack.url, KILN_TOKEN: fx.tenant.token },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** A module exporting an image whose RUN step is unique to this test, so nothing is cached. */
function imageModule(name: string, marker: string): string {
  const dir = path.join(fx.work, name);
  mkdirSync(path.join(dir, "files"), { recursive: true });
  writeFileSync(path.join(dir, "files", "note.txt"), `${marker}\n`);
  const file = path.join(dir, "image.ts");
  // The built SDK, as the CLI under test is the built one: the module and the CLI share one Image class.
  const sdk = pathToFileURL(path.join(ROOT, "sdk/dist/index.js")).href;
  writeFileSync(
    file,
    [
      `import { Image } from ${JSON.stringify(sdk)};`,
      `export default Image.fromRegistry(${JSON.stringify(fx.base)})`,
      `  .addLocalDir(${JSON.stringify(path.join(dir, "files"))}, "/files", { copy: true })`,
      // Long enough that the second process submits while the first build runs.
      `  .runCommands("echo building ${marker}; sleep 6; cat /files/note.txt > /marker");`,
      "",
    ].join("\n"),
  );
  return file;
}

describe("builds through the stack share work and report failures", { timeout: 600_000 }, () => {
  it("two processes building the same uncached image at the same time cause one build", async () => {
    const file = imageModule("concurrent", `concurrent-${Date.now()}`);
    const [a, b] = await Promise.all([kiln(["--json", "build", file]), kiln(["--json", "build", file])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const first = JSON.parse(a.stdout) as { imageId: string; digest: string; reference: string };
    const second = JSON.parse(b.stdout) as { imageId: string; digest: string; reference: string };
    expect(first.imageId).not.toBe(second.imageId);
    expect(first.digest).toBe(second.digest);
    const [va, vb] = await Promise.all([view(first.imageId), view(second.imageId)]);
    // One build served both submissions (the second joined it), so the runner got one job.
    expect(va.buildId).not.toBeNull();
    expect(vb.buildId).toBe(va.buildId);
    expect(fx.runner.log().match(/"msg":"job accepted"/g) ?? []).toHaveLength(1);
  });

  it("a second build() is a cache hit that uploads 0 bytes, and forceBuild rebuilds", async () => {
    const marker = `cached-${Date.now()}`;
    imageModule("cached", marker);
    // Each call is a fresh definition, as a new process would have.
    const define = () =>
      Image.fromRegistry(fx.base)
        .addLocalDir(path.join(fx.work, "cached", "files"), "/files", { copy: true })
        .runCommands(`echo building ${marker}; sleep 6; cat /files/note.txt > /marker`);
    const first = await define().build({ client: fx.tenant.client, logs: false });
    expect(first.uploadedBytes).toBeGreaterThan(0);
    // The same object: nothing to do.
    expect(await first.build({ client: fx.tenant.client })).toBe(first);

    const hit = await define().build({ client: fx.tenant.client, logs: false });
    expect(hit.uploadedBytes).toBe(0);
    expect(hit.imageId).not.toBe(first.imageId);
    expect(hit.digest).toBe(first.digest);
    const cached = await view(hit.imageId!);
    expect(cached.buildId).toBeNull();
    expect(cached.layers.every((l) => l.cached)).toBe(true);

    const rebuilt = await define().build({ client: fx.tenant.client, logs: false, forceBuild: true });
    const rebuiltView = await view(rebuilt.imageId!);
    expect(rebuiltView.mode).toBe("force");
    expect(rebuiltView.buildId).not.toBeNull();
    expect(rebuiltView.buildId).not.toBe((await view(first.imageId!)).buildId);
    expect(rebuiltView.layers.some((l) => !l.cached)).toBe(true);
    expect(rebuiltView.status).toBe("succeeded");
  });

  it("a failing step raises ImageBuildError with the layer, the exit code and the last lines", async () => {
    const image = Image.fromRegistry(fx.base).runCommands(`echo about to fail ${Date.now()}`, "echo last words; exit 7");
    const error = await image.build({ client: fx.tenant.client, logs: false }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ImageBuildError);
    const failure = error as ImageBuildError;
    expect(failure.exitCode).toBe(7);
    expect(failure.layerIndex).toBe(1);
    expect(failure.message).toContain("exit code 7");
    expect(failure.message).toContain(`kiln logs ${failure.buildId}`);
    expect(failure.logTail.join("\n")).toContain("last words");
    // The CLI turns it into the documented exit code 3.
    const file = path.join(fx.work, "failing.ts");
    // The built SDK, as the CLI under test is the built one: the module and the CLI share one Image class.
    const sdk = pathToFileURL(path.join(ROOT, "sdk/dist/index.js")).href;
    writeFileSync(
      file,
      `import { Image } from ${JSON.stringify(sdk)};\nexport const image = Image.fromRegistry(${JSON.stringify(fx.base)}).runCommands("exit 9 # ${Date.now()}");\n`,
    );
    const cli = await kiln(["build", file, "--no-logs"]);
    expect(cli.code).toBe(3);
    expect(cli.stderr).toContain("Error: The image build failed.");
    expect(cli.stderr).toContain("exit code 9");
    expect(cli.stderr).toContain("How to fix:");
  });
});
