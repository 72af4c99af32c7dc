// Real builds with buildah (chroot isolation, vfs storage) on a locally made busybox base
// image in a real local registry: a multi-layer job with runCommands, env, workdir,
// addLocalDir(copy) and a secret, then a failing step. Digests are checked against the
// registry; the image, its config and history, the logs and the disk are searched for the secret.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Image, Secret } from "../../sdk/src/index.ts";
import { archivePathOf } from "../../sdk/src/local-files.ts";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { imageConfig, imageContents, registryDigest } from "./helpers/inspect.ts";
import { contextBundle, dispatch, jobFromImage } from "./helpers/jobs.ts";

const SECRET_VALUE = "kiln-secret-value-7f3a9c1e";
let scratch: string;
const harness = useBuildHarness({
  base: "busybox",
  async prepare() {
    scratch = await mkdtemp(path.join(tmpdir(), "kiln-app-"));
    return { logFlushMs: 200 };
  },
  async cleanup() {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  },
});

describe("a multi-layer job built with buildah", () => {
  it("builds every layer, pushes it, reports registry digests, and keeps the secret out of image, logs and disk", async () => {
    const { orchestrator } = harness;
    const app = path.join(scratch, "app");
    await mkdir(path.join(app, "sub"), { recursive: true });
    await writeFile(path.join(app, "data.txt"), "data from the context\n");
    await writeFile(path.join(app, "sub", "nested.txt"), "nested\n");
    const inlineSecret = Secret.fromDict({ API_TOKEN: SECRET_VALUE });
    const image = Image.fromRegistry(harness.baseRef)
      .runCommands("echo hello > /hello.txt")
      .env({ GREETING: "hello-env" })
      .workdir("/app")
      .addLocalDir(app, "/app", { copy: true })
      .runCommands(
        'echo "token=$API_TOKEN" && printf %s "$API_TOKEN" | sha256sum | cut -d" " -f1 > /token-sha && cat data.txt > /copied.txt',
        {
          secrets: [inlineSecret],
        },
      );
    const tar = await contextBundle(
      [{ kind: "dir", localPath: app, archivePath: archivePathOf("/app"), ignore: [] }],
      path.join(app, "..", "hash-index"),
    );
    const job = await jobFromImage(image, {
      orchestrator,
      registryHost: harness.registry.host,
      contexts: { 4: tar },
      secrets: { [inlineSecret.ref]: { API_TOKEN: SECRET_VALUE } },
    });

    const response = await dispatch(harness.runner.url, job, harness.secret);
    expect(response.status).toBe(202);
    const final = await orchestrator.final();
    expect(final).toMatchObject({ type: "succeeded", jobId: job.jobId, attemptId: job.attemptId, fencingToken: 1 });
    expect(orchestrator.problems).toEqual([]);

    const types = orchestrator.events.map((e) => e.type).filter((t) => t !== "log" && t !== "logs" && t !== "heartbeat" && t !== "phases");
    expect(types).toEqual(["accepted", "started", ...job.layers.map(() => "layer_succeeded"), "succeeded"]);
    const done = orchestrator.ofType("layer_succeeded");
    expect(done.map((e) => e.layerKey)).toEqual(job.layers.map((l) => l.key));
    for (const [i, event] of done.entries()) {
      expect(event.reference).toBe(job.layers[i]!.target);
      expect(event.digest).toBe(await registryDigest(event.reference));
      expect(event.sizeBytes).toBeGreaterThan(0);
    }
    // The image's SBOM (decision 0024): one report, for the top layer and its reported digest; busybox records no packages.
    expect(orchestrator.sboms.map((r) => [r.layerKey, r.digest, r.sbomError])).toEqual([
      [done.at(-1)!.layerKey, done.at(-1)!.digest, undefined],
    ]);
    expect(JSON.parse(orchestrator.sboms[0]!.sbom!)).toMatchObject({ bomFormat: "CycloneDX", specVersion: "1.6", components: [] });
    // The base, named by tag, with the digest the registry serves for it (decision 0024): one report, before the SBOM.
    expect(orchestrator.baseDigests.map((r) => r.bases)).toEqual([
      [{ layerKey: job.layers[0]!.key, reference: harness.baseRef, digest: await registryDigest(harness.baseRef) }],
    ]);

    const last = job.layers.at(-1)!.target;
    const config = await imageConfig(last);
    expect(config.json.config?.Env).toContain("GREETING=hello-env");
    expect(config.json.config?.WorkingDir).toBe("/app");
    const contents = await imageContents(last);
    expect(contents.files.get("/hello.txt")?.data.toString()).toBe("hello\n");
    expect(contents.files.get("/app/data.txt")?.data.toString()).toBe("data from the context\n");
    expect(contents.files.get("/app/sub/nested.txt")?.data.toString()).toBe("nested\n");
    expect(contents.files.get("/copied.txt")?.data.toString()).toBe("data from the context\n");
    // The step saw the value (its hash is in the image) ...
    expect(contents.files.get("/token-sha")?.data.toString().trim()).toBe(createHash("sha256").update(SECRET_VALUE).digest("hex"));
    // ... but the value is nowhere: not in config or history, not in any layer, not in the log.
    expect(config.text).not.toContain(SECRET_VALUE);
    for (const blob of contents.blobs) expect(blob.includes(SECRET_VALUE)).toBe(false);
    expect([...contents.files.keys()].filter((p) => p.startsWith("/run/kiln/"))).toEqual([]);
    const log = orchestrator.logText();
    expect(log).toContain("token=***");
    expect(log).not.toContain(SECRET_VALUE);
    expect(log).not.toContain("registry-password-0123456789");
    // Not on disk after the job: work and secret directories are gone, storage holds no copy.
    await waitForIdle();
    expect(await readdir(harness.workDir).then((e) => e.filter((n) => n !== "cache"))).toEqual([]);
    expect(await readdir(path.join(harness.secretsDir, "jobs"))).toEqual([]);
    expect(
      grepTree(SECRET_VALUE, [harness.storage.root, harness.storage.runRoot, harness.workDir, harness.secretsDir, "/var/tmp"]),
    ).toEqual([]);
  }, 300_000);

  it("fails with reason build, the step's exit code and the last lines when a step exits non-zero", async () => {
    const { orchestrator } = harness;
    const image = Image.fromRegistry(harness.baseRef)
      .runCommands("echo first > /first.txt")
      .runCommands("echo about to fail; exit 7")
      .runCommands("echo never");
    const job = await jobFromImage(image, { orchestrator, registryHost: harness.registry.host });
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    const final = await orchestrator.final();
    expect(final).toMatchObject({ type: "failed", reason: "build", exitCode: 7, layerKey: job.layers[2]!.key });
    if (final.type !== "failed") throw new Error("unreachable");
    expect(final.logTail.join("\n")).toContain("about to fail");
    // Layers before the failing one were built and reported; none after it.
    expect(orchestrator.ofType("layer_succeeded").map((e) => e.layerKey)).toEqual([job.layers[0]!.key, job.layers[1]!.key]);
    expect(await registryDigest(job.layers[1]!.target)).toBe(orchestrator.ofType("layer_succeeded")[1]!.digest);
    await waitForIdle();
    expect(existsSync(harness.workDir) && (await readdir(harness.workDir)).filter((n) => n !== "cache")).toEqual([]);
  }, 300_000);
});

async function waitForIdle(): Promise<void> {
  for (let i = 0; i < 200 && harness.runner.jobs.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
}

/** Files under `dirs` whose bytes contain `needle`. */
function grepTree(needle: string, dirs: string[]): string[] {
  const existing = dirs.filter((d) => existsSync(d));
  if (existing.length === 0) return [];
  try {
    return execFileSync("grep", ["-rlF", "--no-messages", needle, ...existing], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean);
  } catch {
    return []; // grep exits 1 when nothing matches
  }
}
