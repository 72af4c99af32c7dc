// addPython's interpreter download: from a local mirror, verified against the published
// sha256 (per-asset file or SHA256SUMS), extracted safely, cached once per release, and
// placed at python/ in the build context.
import { lstat, mkdir, mkdtemp, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobFailure } from "../src/failure.ts";
import { PythonCache, type PythonStandalone, standaloneAsset } from "../src/python-standalone.ts";
import { DEFAULT_EXTRACT_LIMITS } from "../src/safe-extract.ts";
import { fakePythonArchive, type PythonMirror, releaseFiles, startPythonMirror } from "./helpers/python-mirror.ts";

const spec: PythonStandalone = { series: "3.12", release: "20240107", version: "3.12.1", libc: "gnu" };
const asset = standaloneAsset(spec);
let dir: string;
let mirror: PythonMirror | null = null;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-python-"));
});
afterEach(async () => {
  await mirror?.close();
  mirror = null;
  await rm(dir, { recursive: true, force: true });
});

const cache = (m: PythonMirror) => new PythonCache({ mirror: m.url, cacheDir: path.join(dir, "cache"), limits: DEFAULT_EXTRACT_LIMITS });

describe("PythonCache", () => {
  it("names the x86_64 glibc install_only asset", () => {
    expect(asset).toBe("cpython-3.12.1+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz");
  });

  it("names the aarch64 asset for a linux/arm64 layer, and caches it apart from x86_64", async () => {
    const arm = standaloneAsset(spec, "linux/arm64");
    expect(arm).toBe("cpython-3.12.1+20240107-aarch64-unknown-linux-gnu-install_only.tar.gz");
    mirror = await startPythonMirror(releaseFiles(spec.release, arm, await fakePythonArchive(spec.version)));
    await mkdir(path.join(dir, "ctx"));
    await cache(mirror).placeInto(spec, path.join(dir, "ctx"), undefined, "linux/arm64");
    expect(mirror.requests.filter((r) => r.endsWith(".tar.gz"))).toEqual([`/releases/download/${spec.release}/${arm}`]);
  });

  it("downloads, verifies, caches once and places python/ in the context", async () => {
    mirror = await startPythonMirror(releaseFiles(spec.release, asset, await fakePythonArchive(spec.version)));
    const c = cache(mirror);
    const contexts = [path.join(dir, "ctx1"), path.join(dir, "ctx2")];
    for (const ctx of contexts) {
      await mkdir(ctx);
      await c.placeInto(spec, ctx);
      expect(await readFile(path.join(ctx, "python/bin/python3.12"), "utf8")).toContain("Python 3.12.1");
      expect(await readlink(path.join(ctx, "python/bin/python3"))).toBe("python3.12");
      expect(((await lstat(path.join(ctx, "python/bin/python3.12"))).mode & 0o777).toString(8)).toBe("755");
    }
    // One checksum and one archive request for both contexts, and concurrent callers share them.
    expect(mirror.requests.filter((r) => r.endsWith(".tar.gz"))).toHaveLength(1);
    await Promise.all([c.ensure(spec), c.ensure(spec)]);
    expect(mirror.requests.filter((r) => r.endsWith(".tar.gz"))).toHaveLength(1);
  });

  it("falls back to the release's SHA256SUMS", async () => {
    mirror = await startPythonMirror(releaseFiles(spec.release, asset, await fakePythonArchive(spec.version), { sums: true }));
    await mkdir(path.join(dir, "ctx"));
    await cache(mirror).placeInto(spec, path.join(dir, "ctx"));
    expect(mirror.requests).toContain(`/releases/download/${spec.release}/SHA256SUMS`);
  });

  it("refuses an archive that does not match its checksum, and caches nothing", async () => {
    mirror = await startPythonMirror(
      releaseFiles(spec.release, asset, await fakePythonArchive(spec.version), { checksum: "f".repeat(64) }),
    );
    const error = await cache(mirror)
      .ensure(spec)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobFailure);
    expect((error as Error).message).toMatch(/does not match its sha256/);
    expect(await lstat(path.join(dir, "cache/python/20240107", asset.replace(".tar.gz", ""))).catch(() => null)).toBeNull();
  });

  it("refuses a release whose checksum is not published", async () => {
    const files = releaseFiles(spec.release, asset, await fakePythonArchive(spec.version));
    files.delete(`/releases/download/${spec.release}/${asset}.sha256`);
    mirror = await startPythonMirror(files);
    await expect(cache(mirror).ensure(spec)).rejects.toThrow(/publishes no sha256/);
  });
});
