/**
 * The local hash index (docs/decisions/0022): per context root, each file's stat tuple (size,
 * mtime and ctime, inode, mode) and the sha256 it had, like git's index, so an unchanged tree
 * costs a stat walk. Git's "racily clean" rule applies: a file whose mtime is not older than
 * the index file's own mtime may have changed within the same clock tick after it was hashed,
 * so its cached hash is not trusted. The index is replaced atomically (a
 * temporary file renamed over it), so a crash mid-write or two concurrent builds leave either
 * the old or a new complete index; a corrupt or foreign one is ignored, never trusted.
 */
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from "node:fs";
import { mkdir, open, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ExecutionError } from "./errors.ts";

/** Bump when the file format or the meaning of an entry changes: older indexes are then ignored. */
const INDEX_VERSION = 3;
const CHUNK = 1 << 20;
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
const DIGEST_BYTES = 32;
// Stamps are stored as the platform's float64s: an index written by a machine of the other byte order is ignored.
const BYTE_ORDER = os.endianness();
// One read buffer for every file hashed: reads are synchronous, so it is never shared, and
// a buffer per file would leave thousands of megabytes for the collector.
const readBuffer = Buffer.allocUnsafe(CHUNK);

/** A file's stamp (see `FileStamp`) and the sha256 hex the file had with it. */
type Row = [stamp: FileStamp, sha256Hex: string];

/** The cache directory: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`. */
export function kilnCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_CACHE_DIR) return path.resolve(env.KILN_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), ".cache");
  return path.join(base, "kiln");
}

/** What a look-up cost: files answered from the index and files read and hashed. */
export type HashIndexStats = { cached: number; hashed: number };

/** The hash index of one context root (a set of local source roots), loaded and saved as a whole. */
export class HashIndex {
  readonly file: string;
  readonly stats: HashIndexStats = { cached: 0, hashed: 0 };
  #root: string;
  // The saved rows as read, in the order of the walk that wrote them: paths, stamps
  // (`STAMP_FIELDS` float64s per row) and sha256 digests (32 bytes per row). A walk of the same
  // tree asks for the files in the same order, so the next row is tried first; `#oldAt`
  // (path -> position) is built only when that guess misses.
  #oldPaths: unknown[] = [];
  #oldStamps = new Float64Array(0);
  #oldDigests = Buffer.alloc(0);
  #oldAt: Map<unknown, number> | undefined;
  #cursor = 0;
  // The saved rows this walk confirmed (each counted once), and every row of this walk in
  // order: a saved row's position, or a row just hashed.
  #used = new Uint8Array(0);
  #usedCount = 0;
  #walkPaths: string[] = [];
  #walkRows: (number | Row)[] = [];
  #writtenAtMs = 0;

  private constructor(file: string, root: string) {
    this.file = file;
    this.#root = root;
  }

  /** Opens the index of `roots` under `cacheDir`; a missing, corrupt or foreign index starts empty. */
  static async open(roots: readonly string[], cacheDir: string = kilnCacheDir()): Promise<HashIndex> {
    const root = JSON.stringify([...new Set(roots.map((r) => path.resolve(r)))].sort());
    const name = createHash("sha256").update(root).digest("hex");
    const index = new HashIndex(path.join(cacheDir, "hash-index", `${name}.json`), root);
    await index.#load();
    return index;
  }

  async #load(): Promise<void> {
    let text: string;
    let writtenAtMs: number;
    try {
      // One open file for both, so the write time is that of the bytes read (the index may be replaced meanwhile).
      const handle = await open(this.file, "r");
      try {
        writtenAtMs = (await handle.stat()).mtimeMs;
        text = await handle.readFile("utf8");
      } finally {
        await handle.close();
      }
    } catch {
      return; // Missing or unreadable: start empty. The index is a cache, never the truth.
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof parsed !== "object" || parsed === null) return;
    const { version, byteOrder, root, paths, stamps, sha256 } = parsed as IndexFile;
    if (version !== INDEX_VERSION || byteOrder !== BYTE_ORDER || root !== this.#root) return;
    if (!Array.isArray(paths) || typeof stamps !== "string" || typeof sha256 !== "string") return;
    const stampValues = new Float64Array(paths.length * STAMP_FIELDS);
    const digests = Buffer.alloc(paths.length * DIGEST_BYTES);
    // A column of another length, or with characters base64 lacks (which decoding skips), is refused.
    if (Buffer.byteLength(stamps, "base64") !== stampValues.byteLength || Buffer.byteLength(sha256, "base64") !== digests.byteLength)
      return;
    if (Buffer.from(stampValues.buffer).write(stamps, "base64") !== stampValues.byteLength) return;
    if (digests.write(sha256, "base64") !== digests.byteLength) return;
    this.#oldPaths = paths;
    this.#used = new Uint8Array(paths.length);
    this.#oldStamps = stampValues;
    this.#oldDigests = digests;
    this.#writtenAtMs = writtenAtMs;
  }

  /**
   * The sha256 (`sha256:<hex>`) of the regular file at `absPath`, which the walk saw as
   * `sizeBytes` long: from the index when its stat stamp is unchanged and not racily clean,
   * else read and hashed (and remembered). `walked` is the stamp of the walk's own lstat of
   * the file, so an unchanged file costs no further system call; without it, it is lstat-ed.
   */
  digestOf(absPath: string, sizeBytes: number, displayPath: string, walked?: FileStamp): string {
    return `sha256:${this.hexOf(absPath, sizeBytes, displayPath, walked)}`;
  }

  /** `digestOf` as bare lowercase hex. */
  hexOf(absPath: string, sizeBytes: number, displayPath: string, walked?: FileStamp): string {
    const cached = this.#cachedHex(absPath, sizeBytes, walked);
    if (cached !== null) return cached;
    let fd: number;
    try {
      fd = openSync(absPath, OPEN_FLAGS);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const how = code === "ELOOP" ? "was replaced by a symlink" : "could not be opened";
      throw new ExecutionError(`${displayPath}: file modified during build (it ${how})`, { cause: error });
    }
    try {
      // The stamp of the file actually read, so a later stat matches only these bytes.
      const stamp = fileStamp(fstatSync(fd));
      const hex = hashOpenFile(fd, sizeBytes, displayPath);
      this.stats.hashed++;
      this.#walkPaths.push(absPath);
      this.#walkRows.push([stamp, hex]);
      return hex;
    } finally {
      closeSync(fd);
    }
  }

  /** The index's sha256 hex of the file when its stamp is unchanged and not racily clean; else null. */
  #cachedHex(absPath: string, sizeBytes: number, walked: FileStamp | undefined): string | null {
    let stamp = walked;
    if (stamp === undefined) {
      const seen = lstatSync(absPath, { throwIfNoEntry: false });
      if (!seen?.isFile()) return null;
      stamp = seen;
    }
    if (stamp.size !== sizeBytes || stamp.mtimeMs >= this.#writtenAtMs) return null;
    const at = this.#positionOf(absPath);
    if (at === undefined || !sameStamp(this.#oldStamps, at * STAMP_FIELDS, stamp)) return null;
    const hex = this.#oldDigests.toString("hex", at * DIGEST_BYTES, (at + 1) * DIGEST_BYTES);
    this.stats.cached++;
    if (this.#used[at] === 0) {
      this.#used[at] = 1;
      this.#usedCount++;
    }
    this.#walkPaths.push(absPath);
    this.#walkRows.push(at);
    return hex;
  }

  /** Where the saved row of `absPath` is: the row after the last one found, else looked up. */
  #positionOf(absPath: string): number | undefined {
    const next = this.#cursor;
    let at: number | undefined = next;
    if (next >= this.#oldPaths.length || this.#oldPaths[next] !== absPath) {
      if (this.#oldAt === undefined) {
        this.#oldAt = new Map();
        for (let i = 0; i < this.#oldPaths.length; i++) this.#oldAt.set(this.#oldPaths[i], i);
      }
      at = this.#oldAt.get(absPath);
    }
    if (at !== undefined) this.#cursor = at + 1;
    return at;
  }

  /** This walk's rows in walk order (a path met twice keeps its last row), so the next walk finds them in turn. */
  #toFile(): IndexFile {
    const last = new Map<string, number>();
    for (let i = 0; i < this.#walkPaths.length; i++) last.set(this.#walkPaths[i]!, i);
    const kept: number[] = [];
    for (let i = 0; i < this.#walkPaths.length; i++) if (last.get(this.#walkPaths[i]!) === i) kept.push(i);
    const paths: string[] = new Array(kept.length);
    const stamps = new Float64Array(kept.length * STAMP_FIELDS);
    const digests = Buffer.alloc(kept.length * DIGEST_BYTES);
    for (let k = 0; k < kept.length; k++) {
      const i = kept[k]!;
      const row = this.#walkRows[i]!;
      paths[k] = this.#walkPaths[i]!;
      if (typeof row === "number") {
        stamps.set(this.#oldStamps.subarray(row * STAMP_FIELDS, (row + 1) * STAMP_FIELDS), k * STAMP_FIELDS);
        this.#oldDigests.copy(digests, k * DIGEST_BYTES, row * DIGEST_BYTES, (row + 1) * DIGEST_BYTES);
      } else {
        const [stamp, hex] = row;
        stamps.set([stamp.size, stamp.mtimeMs, stamp.ctimeMs, stamp.ino, stamp.mode], k * STAMP_FIELDS);
        digests.write(hex, k * DIGEST_BYTES, "hex");
      }
    }
    return {
      version: INDEX_VERSION,
      byteOrder: BYTE_ORDER,
      root: this.#root,
      paths,
      stamps: Buffer.from(stamps.buffer).toString("base64"),
      sha256: digests.toString("base64"),
    };
  }

  /**
   * Writes the entries looked up since `open` (files no longer in the context drop out) to a
   * temporary file and renames it over the index; skipped when nothing changed. Failing to
   * save only costs a re-hash later.
   */
  async save(): Promise<void> {
    // Nothing hashed and the same files: the index on disk already says all of it.
    if (this.stats.hashed === 0 && this.#usedCount === this.#oldPaths.length) return;
    const tmp = `${this.file}.${process.pid}.${crypto.randomUUID()}.tmp`;
    try {
      await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const body = JSON.stringify(this.#toFile());
      await writeFile(tmp, body, { mode: 0o600 });
      await rename(tmp, this.file);
    } catch {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}

/**
 * What the index compares of a file: size, mtime, ctime, inode and mode, from a plain (not
 * bigint) `lstat` or `fstat`. Times are the milliseconds Node derives from seconds and
 * nanoseconds, exact to about 0.25 µs at today's dates: a file rewritten after it was hashed
 * gets a later mtime and ctime by at least the time the hash took to read it, far more than that.
 * BigInt stats would keep every nanosecond at a third more time per file for the walk.
 */
export type FileStamp = Pick<Stats, "size" | "mtimeMs" | "ctimeMs" | "ino" | "mode">;

/** The stamp of a plain `lstat`/`fstat`: its five fields, so the rest of the stat (half its memory) is not kept per file. */
export function fileStamp(info: Stats): FileStamp {
  return { size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, ino: info.ino, mode: info.mode };
}

// A stamp's fields in the index file, in this order.
const STAMP_FIELDS = 5;

/** Whether `stamps[at..at+5]` holds `stamp`. */
function sameStamp(stamps: Float64Array, at: number, stamp: FileStamp): boolean {
  return (
    stamps[at] === stamp.size &&
    stamps[at + 1] === stamp.mtimeMs &&
    stamps[at + 2] === stamp.ctimeMs &&
    stamps[at + 3] === stamp.ino &&
    stamps[at + 4] === stamp.mode
  );
}

/**
 * The index file (version 3): the byte order of its numbers, the sorted, de-duplicated source
 * roots it belongs to, then the rows in walk order as three columns: `paths` (absolute),
 * `stamps` (base64 of five float64s per row: size, mtimeMs, ctimeMs, inode, mode) and
 * `sha256` (base64 of each row's 32-byte digest). Binary columns decode in one native call,
 * where parsing 50,000 decimal numbers took a tenth of an unchanged re-check; a digest read
 * from bytes is well-formed by construction.
 */
type IndexFile = { version?: unknown; byteOrder?: unknown; root?: unknown; paths?: unknown; stamps?: unknown; sha256?: unknown };

/** Reads the open file to its end, hashing it; it must be exactly `sizeBytes` long. */
function hashOpenFile(fd: number, sizeBytes: number, displayPath: string): string {
  const hash = createHash("sha256");
  const buffer = readBuffer;
  let total = 0;
  for (;;) {
    const n = readSync(fd, buffer, 0, CHUNK, null);
    if (n === 0) break;
    total += n;
    if (total > sizeBytes) break;
    hash.update(n === CHUNK ? buffer : buffer.subarray(0, n));
  }
  if (total !== sizeBytes) throw new ExecutionError(`${displayPath}: file modified during build (expected ${sizeBytes} bytes)`);
  return hash.digest("hex");
}
