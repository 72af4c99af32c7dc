/**
 * Builds a layer's context manifest (docs/decisions/0022) from the walked entries: the same
 * entries the tarball held, each file's sha256 answered by the local hash index when its stat
 * tuple is unchanged. Also remembers where each blob's bytes are, for the upload.
 */
import { readlinkSync } from "node:fs";
import { type ContextManifest, type ContextManifestEntry, encodeContextManifest } from "@kiln-build/protocol";
import type { ContextEntry, ContextFileDigest } from "./context-tar.ts";
import { InvalidError } from "./errors.ts";
import type { HashIndex } from "./hash-index.ts";

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
  blobs: Map<string, BlobSource>;
  /** Every regular file, in manifest order. */
  files: ContextFileDigest[];
};

/** The manifest of `entries` (sorted, parents included, as `collectContextEntries` lists them). */
export async function buildContextManifest(entries: readonly ContextEntry[], index: HashIndex): Promise<ResolvedContext> {
  const out: ContextManifestEntry[] = [];
  const blobs = new Map<string, BlobSource>();
  const files: ContextFileDigest[] = [];
  for (const entry of entries) {
    if (entry.type === "dir") out.push({ path: entry.path, type: "dir", mode: entry.mode & 0o7777 });
    else if (entry.type === "symlink") {
      const target = entry.linkTarget ?? readlinkSync(entry.absPath);
      if (target.length === 0) throw new InvalidError(`${entry.path}: symlink with an empty target`);
      out.push({ path: entry.path, type: "symlink", target });
    } else {
      const sha256 = index.digestOf(entry.absPath, entry.size, entry.path);
      out.push({ path: entry.path, type: "file", mode: entry.mode & 0o7777, size: entry.size, sha256 });
      if (!blobs.has(sha256)) blobs.set(sha256, { absPath: entry.absPath, sizeBytes: entry.size, path: entry.path });
      files.push({ path: entry.path, sha256: sha256.slice("sha256:".length), mode: entry.mode & 0o7777 });
    }
  }
  const manifest: ContextManifest = { version: 1, entries: out };
  const { bytes, digest } = await encodeContextManifest(manifest);
  return { digest, sizeBytes: bytes.byteLength, manifest, manifestBytes: bytes, blobs, files };
}
