/**
 * Builds a layer's context manifest (docs/decisions/0022) from the walked entries: the same
 * entries the tarball held, each file's sha256 answered by the local hash index when its stat
 * tuple is unchanged. Also remembers where each blob's bytes are, for the upload.
 */
import { readlinkSync } from "node:fs";
import { setImmediate } from "node:timers/promises";
import { type ContextManifest, type ContextManifestEntry, encodeContextManifest } from "@kiln-build/protocol";
import type { ContextEntry, ContextFileDigest } from "./context-tar.ts";
import { InvalidError } from "./errors.ts";
import type { HashIndex } from "./hash-index.ts";

// Longest stretch of synchronous hashing before the event loop runs again, and how many
// files go by between two looks at the clock (a cached file costs microseconds).
const SLICE_MS = 20;
const CLOCK_EVERY = 64;

/** A local file that holds a blob's bytes. */
export type BlobSource = { absPath: string; sizeBytes: number; path: string };

/** A resolved context: the manifest's digest and bytes, and where each blob it names is on disk. */
export type ResolvedContext = {
  /** The manifest's `sha256:<hex>`: the context digest a layer key covers. */
  digest: string;
  /** The manifest's length in bytes. */
  sizeBytes: number;
  manifest: ContextManifest;
  manifestBytes: Uint8Array;
  /** Each distinct blob digest and one local file with its bytes. */
  readonly blobs: Map<string, BlobSource>;
  /** Every regular file, in manifest order. */
  files: ContextFileDigest[];
};

/** The manifest of `entries` (sorted, parents included, as `collectContextEntries` lists them). */
export async function buildContextManifest(entries: readonly ContextEntry[], index: HashIndex): Promise<ResolvedContext> {
  const out: ContextManifestEntry[] = new Array(entries.length);
  const files: ContextFileDigest[] = [];
  // Where each file's bytes are, for the blob list an upload asks for (the entries, stamps
  // and all, need not outlive this call).
  const absPaths: string[] = [];
  let sliceStart = performance.now();
  let lastHashed = index.stats.hashed;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const mode = entry.mode & 0o7777;
    if (entry.type === "dir") out[i] = { path: entry.path, type: "dir", mode };
    else if (entry.type === "symlink") {
      const target = entry.linkTarget ?? readlinkSync(entry.absPath);
      if (target.length === 0) throw new InvalidError(`${entry.path}: symlink with an empty target`);
      out[i] = { path: entry.path, type: "symlink", target };
    } else {
      const hex = index.hexOf(entry.absPath, entry.size, entry.path, entry.stamp);
      out[i] = { path: entry.path, type: "file", mode, size: entry.size, sha256: `sha256:${hex}` };
      files.push({ path: entry.path, sha256: hex, mode });
      absPaths.push(entry.absPath);
      // Hashing changed files is synchronous: let the event loop (progress, signals) run
      // between slices, looking at the clock after each file hashed or every few cached ones.
      const hashed = index.stats.hashed;
      if ((hashed !== lastHashed || files.length % CLOCK_EVERY === 0) && performance.now() - sliceStart > SLICE_MS) {
        await setImmediate();
        sliceStart = performance.now();
      }
      lastHashed = hashed;
    }
  }
  const manifest: ContextManifest = { version: 1, entries: out };
  const { bytes, digest } = await encodeContextManifest(manifest);
  let blobs: Map<string, BlobSource> | undefined;
  return {
    digest,
    sizeBytes: bytes.byteLength,
    manifest,
    manifestBytes: bytes,
    files,
    // Only an upload reads it, and a warm build uploads nothing: built on first use.
    get blobs() {
      blobs ??= blobSources(manifest, absPaths);
      return blobs;
    },
  };
}

/** Each distinct blob of the manifest and the first file with its bytes (`absPaths`: each file's, in order). */
function blobSources(manifest: ContextManifest, absPaths: readonly string[]): Map<string, BlobSource> {
  const blobs = new Map<string, BlobSource>();
  let i = 0;
  for (const entry of manifest.entries) {
    if (entry.type !== "file") continue;
    const absPath = absPaths[i++]!;
    if (!blobs.has(entry.sha256)) blobs.set(entry.sha256, { absPath, sizeBytes: entry.size, path: entry.path });
  }
  return blobs;
}
