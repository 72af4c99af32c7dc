/**
 * The local hash index (docs/decisions/0022): per context root, each file's stat tuple (size,
 * mtime and ctime in nanoseconds, inode, mode) and the sha256 it had, like git's index, so an
 * unchanged tree costs a stat walk. Git's "racily clean" rule applies: a file whose mtime is
 * not older than the index file's own mtime may have changed within the same clock tick after
 * it was hashed, so its cached hash is not trusted. The index is replaced atomically (a
 * temporary file renamed over it), so a crash mid-write or two concurrent builds leave either
 * the old or a new complete index; a corrupt or foreign one is ignored, never trusted.
 */
import { createHash } from "node:crypto";
import { type BigIntStats, closeSync, constants, fstatSync, lstatSync, openSync, readSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ExecutionError } from "./errors.ts";

/** Bump when the file format or the meaning of an entry changes: older indexes are then ignored. */
const INDEX_VERSION = 1;
const CHUNK = 1 << 20;
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** size, mtimeNs, ctimeNs, ino, mode (as decimal strings: nanoseconds exceed 2^53), then sha256 hex. */
type Row = [string, string, string, string, string, string];

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
  #old = new Map<string, Row>();
  #next = new Map<string, Row>();
  #writtenAtNs = 0n;

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
    try {
      const [text, info] = await Promise.all([readFile(this.file, "utf8"), stat(this.file, { bigint: true })]);
      const parsed = JSON.parse(text) as { version?: unknown; root?: unknown; entries?: unknown };
      if (parsed.version !== INDEX_VERSION || parsed.root !== this.#root) return;
      if (typeof parsed.entries !== "object" || parsed.entries === null) return;
      const rows = new Map<string, Row>();
      for (const [file, row] of Object.entries(parsed.entries)) {
        if (!isRow(row)) return;
        rows.set(file, row);
      }
      this.#old = rows;
      this.#writtenAtNs = info.mtimeNs;
    } catch {
      // Missing or unreadable: start empty. The index is a cache, never the truth.
    }
  }

  /**
   * The sha256 (`sha256:<hex>`) of the regular file at `absPath`, which the walk saw as
   * `sizeBytes` long: from the index when its stat tuple is unchanged and not racily clean,
   * else read and hashed (and remembered).
   */
  digestOf(absPath: string, sizeBytes: number, displayPath: string): string {
    // A stat answers an unchanged file; only a file that must be hashed is opened.
    const seen = lstatSync(absPath, { bigint: true, throwIfNoEntry: false });
    if (seen?.isFile()) {
      const known = this.#old.get(absPath);
      const key = tupleOf(seen);
      if (known && key.every((v, i) => v === known[i]) && seen.mtimeNs < this.#writtenAtNs && Number(seen.size) === sizeBytes) {
        this.stats.cached++;
        this.#next.set(absPath, known);
        return `sha256:${known[5]}`;
      }
    }
    let fd: number;
    try {
      fd = openSync(absPath, OPEN_FLAGS);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const how = code === "ELOOP" ? "was replaced by a symlink" : "could not be opened";
      throw new ExecutionError(`${displayPath}: file modified during build (it ${how})`, { cause: error });
    }
    try {
      // The tuple of the file actually read, so a later stat matches only these bytes.
      const key = tupleOf(fstatSync(fd, { bigint: true }));
      const hex = hashOpenFile(fd, sizeBytes, displayPath);
      this.stats.hashed++;
      this.#next.set(absPath, [...key, hex] as Row);
      return `sha256:${hex}`;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Writes the entries looked up since `open` (files no longer in the context drop out) to a
   * temporary file and renames it over the index; skipped when nothing changed. Failing to
   * save only costs a re-hash later.
   */
  async save(): Promise<void> {
    // Nothing hashed and the same files: the index on disk already says all of it.
    if (this.stats.hashed === 0 && this.#next.size === this.#old.size) return;
    const tmp = `${this.file}.${process.pid}.${crypto.randomUUID()}.tmp`;
    try {
      await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const body = JSON.stringify({ version: INDEX_VERSION, root: this.#root, entries: Object.fromEntries(this.#next) });
      await writeFile(tmp, body, { mode: 0o600 });
      await rename(tmp, this.file);
    } catch {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}

function tupleOf(info: BigIntStats): string[] {
  return [String(info.size), String(info.mtimeNs), String(info.ctimeNs), String(info.ino), String(info.mode)];
}

function isRow(row: unknown): row is Row {
  return Array.isArray(row) && row.length === 6 && row.every((v) => typeof v === "string") && /^[0-9a-f]{64}$/.test(row[5] as string);
}

/** Reads the open file to its end, hashing it; it must be exactly `sizeBytes` long. */
function hashOpenFile(fd: number, sizeBytes: number, displayPath: string): string {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(CHUNK);
  let total = 0;
  for (;;) {
    const n = readSync(fd, buffer, 0, CHUNK, null);
    if (n === 0) break;
    total += n;
    if (total > sizeBytes) break;
    hash.update(buffer.subarray(0, n));
  }
  if (total !== sizeBytes) throw new ExecutionError(`${displayPath}: file modified during build (expected ${sizeBytes} bytes)`);
  return hash.digest("hex");
}
