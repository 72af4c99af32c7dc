/**
 * The build-context tarball: a deterministic POSIX (ustar + pax) archive of entries the
 * caller has already selected and sorted, produced by streaming each file exactly once.
 *
 * The same entries always give the same bytes on any machine: mtime is fixed at 0
 * (1970-01-01T00:00:00Z), uid/gid are 0, uname/gname are empty, only permission bits are
 * kept (symlinks always 0777), directories end in "/", and pax extended headers (named
 * `././@PaxHeader`) carry only `path`, `linkpath` and `size`, never times; they appear only
 * when a path or link target exceeds 100 bytes or a file 8 GiB. The 512-byte headers are
 * encoded here rather than by tar-stream so those choices are explicit and no stream
 * machinery sits between the file reads and the hashes.
 */

import { createHash, type Hash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync } from "node:fs";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setImmediate } from "node:timers/promises";
import { ExecutionError, InvalidError } from "./errors.ts";
import type { FileStamp } from "./hash-index.ts";

/** One archive member, already selected and sorted by the caller. */
export type ContextEntry = {
  /** Archive path: posix separators, relative, no leading slash, no trailing slash. */
  path: string;
  /** Where to read the entry on the local filesystem (unused for directories). */
  absPath: string;
  type: "file" | "dir" | "symlink";
  /** Permission bits (`st_mode & 0o7777`). */
  mode: number;
  /**
   * Bytes seen by the walk (for a symlink the target's length, 0 for a directory); a regular
   * file must still have exactly this size when read. Ignored for dirs and symlinks.
   */
  size: number;
  /** Symlink target as read by the walker; read with `readlink` when absent. */
  linkTarget?: string;
  /** A walked regular file's stat stamp: the hash index compares it instead of taking another `lstat`. */
  stamp?: FileStamp;
};

/** The sha256 (lowercase hex, no prefix) and mode of one regular file in the context. */
export type ContextFileDigest = { path: string; sha256: string; mode: number };

/** What hashing (or writing) a context produced. */
export type ContextHash = {
  /** `sha256:<hex>` of the exact tar bytes. */
  digest: string;
  /** Length of the tar in bytes. */
  sizeBytes: number;
  /** Every regular file, in archive order. */
  files: ContextFileDigest[];
};

/** Entries accepted by the tar functions: a sorted array or a walker's (async) iterator. */
export type ContextEntries = Iterable<ContextEntry> | AsyncIterable<ContextEntry>;

/** The mtime written for every member, in seconds since the Unix epoch. */
export const CONTEXT_TAR_MTIME = 0;

/** Read size: big enough that per-read overhead vanishes next to hashing, small enough to bound memory. */
const CHUNK = 1 << 20;
/** Longest stretch of synchronous work before letting the event loop run. */
const SLICE_MS = 20;
const BLOCK = 512;
const ZEROS = new Uint8Array(2 * BLOCK);
// Largest size the 12-byte octal field holds (11 digits); bigger files get a pax `size`.
const MAX_OCTAL_SIZE = 0o77777777777;
const PAX_NAME = "././@PaxHeader";
const TYPEFLAG = { file: 0x30, dir: 0x35, symlink: 0x32 } as const;
const encoder = new TextEncoder();
// O_NOFOLLOW and O_NONBLOCK are undefined on Windows, where `?? 0` drops them.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/**
 * Hashes the tarball of `entries` and every regular file in it, reading each file once.
 * Holds neither the archive nor any whole file in memory.
 */
export async function hashContext(entries: ContextEntries): Promise<ContextHash> {
  const tar = createHash("sha256");
  const files: ContextFileDigest[] = [];
  let sizeBytes = 0;
  // Header and padding bytes go straight into the hash: no stream between reads and hashing.
  await emitTar(entries, Buffer.allocUnsafe(CHUNK), files, (chunk) => {
    tar.update(chunk);
    sizeBytes += chunk.length;
  });
  return { digest: `sha256:${tar.digest("hex")}`, sizeBytes, files };
}

/**
 * Streams the tarball of `entries` (byte-identical to what `hashContext` hashes) into
 * `out`, ends it, and returns the digest of exactly what was written.
 */
export async function writeContextTar(entries: ContextEntries, out: Writable): Promise<ContextHash> {
  const tar = createHash("sha256");
  const files: ContextFileDigest[] = [];
  let sizeBytes = 0;
  const source = tarReadable(entries, files, (chunk) => {
    tar.update(chunk);
    sizeBytes += chunk.length;
  });
  await pipeline(source, out);
  return { digest: `sha256:${tar.digest("hex")}`, sizeBytes, files };
}

/** A readable stream of the tarball of `entries`, byte-identical to what `hashContext` hashes. */
export function createContextTarStream(entries: ContextEntries): Readable {
  return tarReadable(entries, null, undefined);
}

/** Receives archive bytes in order; returning a promise makes the producer wait (backpressure). */
type Sink = (chunk: Uint8Array) => void | Promise<void>;

/**
 * A Readable fed by `emitTar`, started on the first read and paused whenever the
 * stream's buffer is full. Chunks are freshly allocated because the stream keeps them.
 */
function tarReadable(
  entries: ContextEntries,
  files: ContextFileDigest[] | null,
  onChunk: ((chunk: Uint8Array) => void) | undefined,
): Readable {
  let started = false;
  let resume: (() => void) | undefined;
  const wake = (): void => {
    const fn = resume;
    resume = undefined;
    fn?.();
  };
  const readable = new Readable({
    read() {
      if (started) return wake();
      started = true;
      emitTar(entries, null, files, sink).then(
        () => readable.push(null),
        (err: unknown) => readable.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    },
    destroy(err, callback) {
      wake();
      callback(err);
    },
  });
  const sink: Sink = (chunk) => {
    if (readable.destroyed) throw new ExecutionError("context tar stream was destroyed before it ended");
    onChunk?.(chunk);
    if (!readable.push(chunk)) return new Promise<void>((resolve) => (resume = resolve));
  };
  return readable;
}

/**
 * Produces the archive into `sink`, appending each regular file's digest to `files`
 * (skipped when null). With a `buffer`, file data is read into it and a chunk is only
 * valid until `sink` returns; without, every chunk is freshly allocated.
 *
 * File I/O is synchronous on purpose: with ~3 syscalls per file, promise-based fs spends
 * more time handing work to the libuv pool and back than reading (measured 2x slower on
 * 10k files). Responsiveness comes from yielding to the event loop every SLICE_MS instead.
 */
async function emitTar(entries: ContextEntries, buffer: Buffer | null, files: ContextFileDigest[] | null, sink: Sink): Promise<void> {
  let sliceStart = performance.now();
  for await (const entry of entries) {
    checkEntry(entry);
    if (entry.type !== "file") {
      const link = entry.type === "symlink" ? (entry.linkTarget ?? readlinkSync(entry.absPath)) : "";
      await sink(encodeHeaders(entry, 0, link));
      continue;
    }
    const fd = openFile(entry);
    const hash = files ? createHash("sha256") : null;
    try {
      const pending = sink(encodeHeaders(entry, entry.size, ""));
      if (pending) await pending;
      let remaining = entry.size;
      for (;;) {
        // Asking for one byte past the expected end detects growth without an extra read.
        const wanted = Math.min(CHUNK, remaining + 1);
        const target = buffer ?? Buffer.allocUnsafe(wanted);
        const chunk = target.subarray(0, readSync(fd, target, 0, wanted, null));
        if (chunk.length > remaining) throw modified(entry, "grew while being read");
        if (chunk.length === 0) {
          if (remaining > 0) throw modified(entry, "shrank while being read");
          break;
        }
        remaining -= chunk.length;
        hash?.update(chunk);
        const pending = sink(chunk);
        if (pending) await pending;
        if (performance.now() - sliceStart > SLICE_MS) {
          await setImmediate();
          sliceStart = performance.now();
        }
        // A short read ending exactly at the expected size is end of file for a regular file.
        if (remaining === 0 && chunk.length < wanted) break;
      }
    } finally {
      closeSync(fd);
    }
    files?.push({ path: entry.path, sha256: (hash as Hash).digest("hex"), mode: entry.mode & 0o7777 });
    const pad = (BLOCK - (entry.size % BLOCK)) % BLOCK;
    if (pad > 0) {
      const pending = sink(ZEROS.subarray(0, pad));
      if (pending) await pending;
    }
  }
  await sink(ZEROS);
}

/**
 * Opens a regular file without following a symlink swapped in since the walk and without
 * blocking on a FIFO; anything that is no longer the walked regular file is an error.
 */
function openFile(entry: ContextEntry): number {
  let fd: number;
  try {
    fd = openSync(entry.absPath, OPEN_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw modified(entry, "was replaced by a symlink", err);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw modified(entry, "is no longer a regular file");
    if (st.size !== entry.size) throw modified(entry, `changed size to ${st.size} bytes`);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function modified(entry: ContextEntry, how: string, cause?: unknown): ExecutionError {
  return new ExecutionError(
    `${entry.path}: file modified during build (it ${how}; the walk saw ${entry.size} bytes)`,
    cause === undefined ? undefined : { cause },
  );
}

function checkEntry(entry: ContextEntry): void {
  const { path } = entry;
  if (path === "" || path.startsWith("/") || path.includes("\0") || path.split("/").includes("..")) {
    throw new InvalidError(`invalid context path ${JSON.stringify(path)}: must be relative, without "..", and non-empty`);
  }
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) {
    throw new InvalidError(`${path}: invalid size ${entry.size}`);
  }
  if (!Number.isInteger(entry.mode) || entry.mode < 0) throw new InvalidError(`${path}: invalid mode ${entry.mode}`);
  if (!Object.hasOwn(TYPEFLAG, entry.type)) throw new InvalidError(`${path}: unsupported entry type ${String(entry.type)}`);
}

/** The ustar header for `entry`, preceded by a pax header when a field does not fit. */
function encodeHeaders(entry: ContextEntry, size: number, linkTarget: string): Uint8Array {
  const name = encoder.encode(entry.type === "dir" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path);
  const link = encoder.encode(linkTarget);
  const records: Uint8Array[] = [];
  if (name.length > 100) records.push(paxRecord("path", name));
  if (link.length > 100) records.push(paxRecord("linkpath", link));
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord("size", encoder.encode(String(size))));
  // A symlink's own permission bits are meaningless and differ by OS (0777 on Linux, umask
  // on macOS), so they are fixed to keep the bytes machine-independent.
  const mode = entry.type === "symlink" ? 0o777 : entry.mode;
  const header = ustarHeader(name, link, mode, size, TYPEFLAG[entry.type]);
  if (records.length === 0) return header;
  const body = Buffer.concat(records);
  const paxHeader = ustarHeader(encoder.encode(PAX_NAME), new Uint8Array(0), 0o644, body.length, 0x78);
  const padded = Math.ceil(body.length / BLOCK) * BLOCK;
  const out = new Uint8Array(BLOCK + padded + BLOCK);
  out.set(paxHeader, 0);
  out.set(body, BLOCK);
  out.set(header, BLOCK + padded);
  return out;
}

/** A pax record `"<len> key=value\n"`, where `<len>` counts the record's bytes including itself. */
function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const rest = key.length + value.length + 3; // space, '=', newline
  let len = rest + String(rest).length;
  if (String(len).length + rest !== len) len += 1;
  return Buffer.concat([encoder.encode(`${len} ${key}=`), value, encoder.encode("\n")]);
}

/** One 512-byte ustar header; over-long name/link fields are truncated (pax holds the real value). */
function ustarHeader(name: Uint8Array, link: Uint8Array, mode: number, size: number, typeflag: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  h.set(truncate(name, 100), 0);
  octal(h, 100, 8, mode & 0o7777);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size > MAX_OCTAL_SIZE ? 0 : size);
  octal(h, 136, 12, CONTEXT_TAR_MTIME);
  h[156] = typeflag;
  h.set(truncate(link, 100), 157);
  h.set([0x75, 0x73, 0x74, 0x61, 0x72, 0x00, 0x30, 0x30], 257); // "ustar\0" "00"
  octal(h, 329, 8, 0); // devmajor
  octal(h, 337, 8, 0); // devminor
  // The checksum is computed with its own field read as eight spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i] as number;
  octal(h, 148, 7, sum);
  return h;
}

/** Writes `value` as zero-padded octal filling `width - 1` bytes, then a NUL. */
function octal(h: Uint8Array, offset: number, width: number, value: number): void {
  const digits = value.toString(8).padStart(width - 1, "0");
  for (let i = 0; i < width - 1; i++) h[offset + i] = digits.charCodeAt(i);
  h[offset + width - 1] = 0;
}

/** Cuts at most `max` bytes without splitting a UTF-8 sequence, so the fallback name stays valid. */
function truncate(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}
