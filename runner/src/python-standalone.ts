/**
 * `addPython`: places a python-build-standalone `install_only` tree at `python/` in a
 * layer's build context (the layer's `COPY /python/. /usr/local` reads it). Archives come
 * from a configurable mirror, are verified against the release's published sha256, and are
 * cached on disk by release and version, so a machine downloads each release once.
 */
import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { copyFile, link, lstat, mkdir, readdir, readlink, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { DEFAULT_PLATFORM, type JobLayer, MACHINE_NAMES, type Platform } from "@kiln-build/protocol";
import { infraFailure } from "./failure.ts";
import { type ExtractLimits, extractTarFile } from "./safe-extract.ts";

/** A release as the layer spec names it. */
export type PythonStandalone = NonNullable<JobLayer["pythonStandalone"]>;

/** Options of {@link PythonCache}. */
export type PythonCacheOptions = { mirror: string; cacheDir: string; fetch?: typeof fetch; limits: ExtractLimits };

/** The archive file name of a release (glibc `install_only`) for the layer's platform (x86_64 by default). */
export function standaloneAsset(spec: PythonStandalone, platform: Platform = DEFAULT_PLATFORM): string {
  return `cpython-${spec.version}+${spec.release}-${MACHINE_NAMES[platform]}-unknown-linux-${spec.libc}-install_only.tar.gz`;
}

/** Download-once cache of extracted standalone Python trees. */
export class PythonCache {
  readonly #options: PythonCacheOptions;
  readonly #inflight = new Map<string, Promise<string>>();

  constructor(options: PythonCacheOptions) {
    this.#options = options;
  }

  /** Places the release's tree at `<contextDir>/python`. */
  async placeInto(spec: PythonStandalone, contextDir: string, signal?: AbortSignal, platform?: Platform): Promise<void> {
    const tree = await this.ensure(spec, signal, platform);
    const dest = path.join(contextDir, "python");
    if (await exists(dest)) throw infraFailure("the layer's context already has a python/ entry, where addPython places the interpreter");
    await linkTree(path.join(tree, "python"), dest);
  }

  /** The cached extracted tree (containing `python/`), downloading it if needed. */
  ensure(spec: PythonStandalone, signal?: AbortSignal, platform?: Platform): Promise<string> {
    const asset = standaloneAsset(spec, platform);
    let pending = this.#inflight.get(asset);
    if (!pending) {
      pending = this.#ensure(spec, asset, signal).finally(() => this.#inflight.delete(asset));
      this.#inflight.set(asset, pending);
    }
    return pending;
  }

  async #ensure(spec: PythonStandalone, asset: string, signal?: AbortSignal): Promise<string> {
    const base = path.join(this.#options.cacheDir, "python", spec.release);
    const tree = path.join(base, asset.replace(/\.tar\.gz$/, ""));
    if (await exists(path.join(tree, ".complete"))) return tree;
    await mkdir(base, { recursive: true, mode: 0o755 });
    const url = `${this.#options.mirror.replace(/\/$/, "")}/${spec.release}/${asset}`;
    const expected = await this.#checksum(spec, asset, url, signal);
    const archive = path.join(base, `${asset}.${randomUUID()}.part`);
    const staging = `${tree}.${randomUUID()}.staging`;
    try {
      const actual = await this.#download(url, archive, signal);
      if (actual !== expected)
        throw infraFailure(`${asset} from the Python mirror does not match its sha256 (expected ${expected}, got ${actual})`);
      await mkdir(staging, { mode: 0o755 });
      await extractTarFile(archive, staging, this.#options.limits);
      if (!(await exists(path.join(staging, "python"))))
        throw infraFailure(`${asset} has no python/ directory; is the mirror serving install_only archives?`);
      await writeFile(path.join(staging, ".complete"), `${expected}\n`);
      await rm(tree, { recursive: true, force: true });
      await rename(staging, tree);
      return tree;
    } finally {
      await rm(archive, { force: true });
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** The published sha256: `<asset>.sha256` (older releases) or the release's `SHA256SUMS`. */
  async #checksum(spec: PythonStandalone, asset: string, url: string, signal?: AbortSignal): Promise<string> {
    const single = await this.#text(`${url}.sha256`, signal);
    const fromSingle = single?.trim().split(/\s+/)[0];
    if (fromSingle && /^[0-9a-f]{64}$/.test(fromSingle)) return fromSingle;
    const sums = await this.#text(`${this.#options.mirror.replace(/\/$/, "")}/${spec.release}/SHA256SUMS`, signal);
    for (const line of sums?.split("\n") ?? []) {
      const [hash, name] = line.trim().split(/\s+\*?/);
      if (name === asset && hash && /^[0-9a-f]{64}$/.test(hash)) return hash;
    }
    throw infraFailure(`the Python mirror publishes no sha256 for ${asset}; refusing an unverified interpreter`);
  }

  async #text(url: string, signal?: AbortSignal): Promise<string | null> {
    try {
      const response = await (this.#options.fetch ?? fetch)(url, signal ? { signal } : {});
      if (!response.ok) {
        await response.body?.cancel();
        return null;
      }
      return await response.text();
    } catch {
      return null;
    }
  }

  async #download(url: string, file: string, signal?: AbortSignal): Promise<string> {
    let response: Response;
    try {
      response = await (this.#options.fetch ?? fetch)(url, signal ? { signal } : {});
    } catch (error) {
      throw infraFailure(`could not download ${url}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!response.ok || !response.body) throw infraFailure(`the Python mirror answered HTTP ${response.status} for ${url}`);
    const hash = createHash("sha256");
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(response.body as WebReadableStream), meter, createWriteStream(file, { mode: 0o600 }));
    return hash.digest("hex");
  }
}

/** Mirrors a directory tree with hard links (copies across file systems); symlinks stay links. */
async function linkTree(from: string, to: string): Promise<void> {
  const info = await stat(from);
  await mkdir(to, { mode: info.mode & 0o7777 });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) await linkTree(src, dst);
    else if (entry.isSymbolicLink()) await symlink(await readlink(src), dst);
    else await link(src, dst).catch(() => copyFile(src, dst));
  }
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}
