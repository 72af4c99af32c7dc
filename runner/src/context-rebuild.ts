/**
 * Rebuilds a layer's build context from its manifest and file blobs (docs/decisions/0022):
 * downloads the manifest (verified by digest and size), refuses anything unsafe or over the
 * runner's limits, fetches only the blobs the workspace's local cache lacks (each verified by
 * digest), then creates the exact tree: directories and files with their modes, symlinks with
 * their targets, every mtime 0 as the tarball had it. Nothing is ever written below a symlink:
 * the manifest lists every parent as a directory before its contents.
 */
import { chmod, lutimes, mkdir, readFile, rm, symlink, utimes } from "node:fs/promises";
import path from "node:path";
import { type ContextManifest, decodeContextManifest, MAX_MANIFEST_BYTES, manifestBlobs } from "@kiln-build/protocol";
import type { BlobCache } from "./blob-cache.ts";
import { type ContextRef, type DownloadOptions, downloadContext } from "./context-download.ts";
import { infraFailure } from "./failure.ts";

/** The runner's limits on one context. */
export type RebuildLimits = { maxBytes: number; maxEntries: number; maxDepth: number };

/** What a rebuild did: blobs fetched and bytes downloaded, and blobs the cache already had. */
export type RebuildStats = { entries: number; fetched: number; fetchedBytes: number; cached: number };

const EPOCH = new Date(0);
const CONCURRENCY = 8;

/** Rebuilds the context `ref` names into the (empty) `contextDir`, using `cache` for the workspace's blobs. */
export async function rebuildContext(
  ref: ContextRef,
  contextDir: string,
  options: DownloadOptions & { workspaceId: string; cache: BlobCache; scratchDir: string; limits: RebuildLimits },
): Promise<RebuildStats> {
  const manifestFile = path.join(options.scratchDir, "context-manifest.json");
  await downloadContext(ref, manifestFile, { ...options, maxBytes: MAX_MANIFEST_BYTES });
  const manifest = decodeContextManifest(new Uint8Array(await readFile(manifestFile)));
  await rm(manifestFile, { force: true });
  if (!manifest) throw infraFailure(`refused the build context ${ref.digest}: it is not a valid context manifest`);
  checkLimits(ref.digest, manifest, options.limits);
  const stats: RebuildStats = { entries: manifest.entries.length, fetched: 0, fetchedBytes: 0, cached: 0 };
  await fetchMissingBlobs(ref, manifest, options, stats);
  await materialize(manifest, contextDir, options.cache, options.workspaceId);
  return stats;
}

function checkLimits(digest: string, manifest: ContextManifest, limits: RebuildLimits): void {
  const refuse = (why: string) => infraFailure(`refused the build context ${digest}: ${why}`);
  if (manifest.entries.length > limits.maxEntries)
    throw refuse(`${manifest.entries.length} entries, over the limit of ${limits.maxEntries}`);
  let bytes = 0;
  for (const entry of manifest.entries) {
    if (entry.path.split("/").length > limits.maxDepth) throw refuse(`${entry.path} is deeper than ${limits.maxDepth} levels`);
    if (entry.type === "file") bytes += entry.size;
  }
  if (bytes > limits.maxBytes) throw refuse(`${bytes} bytes of files, over the limit of ${limits.maxBytes}`);
}

/** The download URL of a blob: the manifest's URL with the blob's digest in its place. */
export function blobUrl(manifestUrl: string, manifestDigest: string, blobDigest: string): string {
  const url = new URL(manifestUrl);
  url.pathname = url.pathname.replace(manifestDigest, blobDigest);
  return url.toString();
}

async function fetchMissingBlobs(
  ref: ContextRef,
  manifest: ContextManifest,
  options: DownloadOptions & { workspaceId: string; cache: BlobCache },
  stats: RebuildStats,
): Promise<void> {
  const modeOf = new Map<string, number>();
  for (const e of manifest.entries) if (e.type === "file" && !modeOf.has(e.sha256)) modeOf.set(e.sha256, e.mode);
  const queue: { digest: string; sizeBytes: number }[] = [];
  const cached = await options.cache.cachedDigests(options.workspaceId);
  for (const blob of manifestBlobs(manifest)) {
    if (cached.has(blob.digest)) stats.cached++;
    else queue.push(blob);
  }
  const worker = async () => {
    for (let blob = queue.shift(); blob; blob = queue.shift()) {
      const tmp = await options.cache.tempPath(options.workspaceId);
      const blobRef = { url: blobUrl(ref.url, ref.digest, blob.digest), digest: blob.digest, sizeBytes: blob.sizeBytes };
      await downloadContext(blobRef, tmp, options);
      await options.cache.admit(options.workspaceId, blob.digest, modeOf.get(blob.digest)!, tmp);
      stats.fetched++;
      stats.fetchedBytes += blob.sizeBytes;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
}

async function materialize(manifest: ContextManifest, contextDir: string, cache: BlobCache, workspaceId: string): Promise<void> {
  const dirs: { abs: string; mode: number }[] = [];
  for (const entry of manifest.entries) {
    const abs = path.join(contextDir, ...entry.path.split("/"));
    if (entry.type === "dir") {
      // Owner-writable until every child exists; the recorded mode is set on the way out.
      await mkdir(abs, { mode: 0o700 });
      dirs.push({ abs, mode: entry.mode });
    } else if (entry.type === "symlink") {
      await symlink(entry.target, abs);
      await lutimes(abs, EPOCH, EPOCH).catch(() => undefined);
    } else if (!(await cache.place(workspaceId, entry.sha256, entry.mode, abs))) {
      throw infraFailure(`the blob ${entry.sha256} of ${entry.path} left the cache before the context was built; retry the job`);
    }
  }
  for (const { abs, mode } of dirs.reverse()) {
    await chmod(abs, mode);
    await utimes(abs, EPOCH, EPOCH);
  }
}
