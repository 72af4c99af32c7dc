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

// Longest stretch of synchronous hashing before the event loop runs again.
const SLICE_MS = 20;

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
  const fileEntries: ContextEntry[] = [];
  let sliceStart = performance.now();
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
      fileEntries.push(entry);
      // Hashing changed files is synchronous: let the event loop (progress, signals) run between slices.
      if (performance.now() - sliceStart > SLICE_MS) {
        await setImmediate();
        sliceStart = performance.now();
      }
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
      blobs ??= blobSources(fileEntries, files);
      return blobs;
    },
  };
}

/** Each distinct blob of the files (`entries[i]` holds `files[i]`) and the first file with its bytes. */
function blobSources(entries: readonly ContextEntry[], files: readonly ContextFileDigest[]): Map<string, BlobSource> {
  const blobs = new Map<string, BlobSource>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const sha256 = `sha256:${files[i]!.sha256}`;
    if (!blobs.has(sha256)) blobs.set(sha256, { absPath: entry.absPath, sizeBytes: entry.size, path: entry.path });
  }
  return blobs;
}
