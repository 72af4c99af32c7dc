/**
 * Walks a local build context the way BuildKit's tonistiigi/fsutil does (`NewFilterFS` over
 * `filepath.WalkDir`): entries sorted by name at every level, include and exclude patterns
 * with `!` re-includes (context-filter.ts), excluded directories listed only once something
 * below them is, and subtrees skipped only when no pattern could bring anything inside them
 * back. The walk is synchronous (one `readdir` per directory, one `lstat` per listed entry,
 * no promise per entry) and iterative, so it can stop after any entry and go on later: the
 * async walk and `collectContextEntries` run it in slices and let the event loop in between.
 */
import fs, { type Dirent, promises as fsp, type Stats } from "node:fs";
import path from "node:path";
import { setImmediate } from "node:timers/promises";
import { type Decision, PatternFilter } from "./context-filter.ts";
import type { ContextEntry } from "./context-tar.ts";
import { type IgnoreFileLookup, ignoreFileCandidates, parseDockerignore } from "./dockerignore.ts";
import { InvalidError, NotFoundError } from "./errors.ts";
import { fileStamp } from "./hash-index.ts";
import { type IgnorePredicate, type IgnoreSpec, type MatchInfo, toIgnorePredicate } from "./pattern-matcher.ts";

/**
 * One file, directory or symlink of the context: the same shape `hashContext` archives.
 * `size` is the file's bytes, the target's length for symlinks, 0 for directories (as fsutil).
 */
export type ContextWalkEntry = ContextEntry;

/** What `walkContext` lists. */
export type WalkContextOptions = {
  /** fsutil IncludePatterns: only matching paths (and the directories holding them) are listed. */
  includePatterns?: readonly string[] | undefined;
  /** fsutil ExcludePatterns, i.e. `.dockerignore` patterns; `!` re-includes. */
  excludePatterns?: readonly string[] | undefined;
  /**
   * A further, Modal-style filter applied as if on top of the pattern filters: what it
   * matches is dropped, and it cannot bring back what the patterns removed.
   */
  ignore?: IgnoreSpec | undefined;
  /** Symlinks are always listed as symlinks; following them is not supported. */
  followSymlinks?: false;
};

/** A directory on the current walk path, with whether each filter layer has listed it yet. */
type Frame = {
  rel: string;
  abs: string;
  includeInfo: MatchInfo | undefined;
  excludeInfo: MatchInfo | undefined;
  passesIgnore: boolean;
  listedByPatterns: boolean;
  listed: boolean;
  /** The directory's lstat once taken; null when it vanished. */
  stats: Stats | null | undefined;
};

/** A directory being read: its sorted entries and how far the walk got. */
type Level = { frame: Frame | undefined; rel: string; prefix: string; dirents: Dirent[]; next: number };

/**
 * Lists `root`'s contents depth-first in fsutil order. Options are validated now (invalid
 * patterns throw `InvalidError` here); the file system is read as the generator is consumed.
 * An unreadable directory fails the walk unless the patterns exclude it. Each regular file
 * carries the stamp of the walk's own `lstat`, so the hash index needs no second one.
 */
export function walkContext(root: string, opts: WalkContextOptions = {}): AsyncGenerator<ContextWalkEntry, void, undefined> {
  const slices = walkContextSlices(root, opts);
  return (async function* () {
    let first = true;
    for (const slice of slices) {
      if (!first) await setImmediate();
      first = false;
      yield* slice;
    }
  })();
}

// Longest stretch of synchronous walking before the event loop may run.
const SLICE_MS = 20;
// Entries walked between two looks at the clock.
const CLOCK_EVERY = 256;

/**
 * `walkContext` in synchronous slices: each slice holds the entries walked in about 20 ms, so
 * a caller that collects the whole walk can let the event loop run between slices at no cost
 * per entry. Options are validated now; the file system is read as slices are taken.
 */
export function walkContextSlices(root: string, opts: WalkContextOptions = {}): Generator<ContextWalkEntry[], void, undefined> {
  if (opts.followSymlinks !== undefined && opts.followSymlinks !== false) {
    throw new InvalidError("walkContext never follows symlinks");
  }
  const filter = new PatternFilter(opts);
  const ignore = opts.ignore === undefined ? undefined : toIgnorePredicate(opts.ignore);
  return (function* () {
    const walker = new Walker(resolveRoot(root), filter, ignore);
    for (;;) {
      const out: ContextWalkEntry[] = [];
      const done = walker.run(out, SLICE_MS);
      if (out.length > 0) yield out;
      if (done) return;
    }
  })();
}

/** Whether `relPath` is visible through the include/exclude patterns (fsutil `Open`). */
export function contextIncludes(relPath: string, opts: Pick<WalkContextOptions, "includePatterns" | "excludePatterns">): boolean {
  return new PatternFilter(opts).allows(relPath);
}

function resolveRoot(root: string): string {
  let real: string;
  try {
    real = fs.realpathSync(root);
  } catch (err) {
    if (isNotExist(err)) throw new NotFoundError(`context directory ${root} does not exist`, { cause: err });
    throw err;
  }
  if (!fs.statSync(real).isDirectory()) throw new InvalidError(`context path ${root} is not a directory`);
  return real;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isNotExist(err: unknown): boolean {
  const code = errCode(err);
  return code === "ENOENT" || code === "ENOTDIR";
}

const LSTAT_OPTIONS = { throwIfNoEntry: false } as const;

function lstatOrNull(abs: string): Stats | null {
  try {
    // Vanished since readdir: fsutil skips such entries too.
    return fs.lstatSync(abs, LSTAT_OPTIONS) ?? null;
  } catch (err) {
    if (isNotExist(err)) return null;
    throw err;
  }
}

// Go sorts names by UTF-8 bytes, i.e. by code point; UTF-16 order differs only where
// surrogates meet U+E000..U+FFFF, so those are swapped into code-point order.
function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

const compareDirents = (a: Dirent, b: Dirent): number => compareNames(a.name, b.name);

function toEntry(rel: string, abs: string, st: Stats): ContextWalkEntry | null {
  const mode = st.mode & 0o7777;
  const format = st.mode & fs.constants.S_IFMT;
  if (format === fs.constants.S_IFDIR) return { path: rel, absPath: abs, type: "dir", mode, size: 0 };
  if (format === fs.constants.S_IFREG) return { path: rel, absPath: abs, type: "file", mode, size: st.size, stamp: fileStamp(st) };
  if (format === fs.constants.S_IFLNK) {
    const linkTarget = fs.readlinkSync(abs);
    return { path: rel, absPath: abs, type: "symlink", mode, size: st.size, linkTarget };
  }
  // Sockets, FIFOs and devices have no place in an uploaded context; reading a FIFO would hang.
  return null;
}

// No patterns and no ignore: every entry is listed, so one shared decision serves them all.
const LIST_ALL: Decision = Object.freeze({ prune: false, skip: false, includeInfo: undefined, excludeInfo: undefined });

/** The walk's state between slices: the directories being read, innermost last. */
class Walker {
  readonly #filter: PatternFilter;
  readonly #ignore: IgnorePredicate | undefined;
  readonly #listsAll: boolean;
  readonly #levels: Level[] = [];
  // The frames of the directories on the walk path (every level's but the root's).
  readonly #stack: Frame[] = [];

  constructor(realRoot: string, filter: PatternFilter, ignore: IgnorePredicate | undefined) {
    this.#filter = filter;
    this.#ignore = ignore;
    this.#listsAll = filter.include === undefined && filter.exclude === undefined && ignore === undefined;
    this.#enter(realRoot, "", undefined, false);
  }

  /** Appends entries to `out` for about `sliceMs`; true once the walk is complete. */
  run(out: ContextWalkEntry[], sliceMs: number): boolean {
    const started = performance.now();
    let steps = 0;
    while (this.#levels.length > 0) {
      const level = this.#levels[this.#levels.length - 1] as Level;
      const d = level.dirents[level.next++];
      if (d === undefined) {
        this.#levels.pop();
        if (level.frame !== undefined) this.#stack.pop();
        continue;
      }
      this.#visit(level, d, out);
      if (++steps % CLOCK_EVERY === 0 && performance.now() - started > sliceMs) return false;
    }
    return true;
  }

  #visit(level: Level, d: Dirent, out: ContextWalkEntry[]): void {
    const rel = level.rel === "" ? d.name : `${level.rel}/${d.name}`;
    const abs = level.prefix + d.name;
    const isDir = d.isDirectory();
    const parent = level.frame;
    let decision = LIST_ALL;
    let passesIgnore = true;
    if (!this.#listsAll) {
      decision = this.#filter.decide(rel, isDir, parent);
      if (!decision.prune && this.#ignore !== undefined && this.#ignore(rel)) {
        // Pruning here equals the ignore layer skipping the directory once it sees it.
        if (isDir && this.#ignore.canPruneDirectories) decision.prune = true;
        passesIgnore = false;
      }
    }
    if (decision.prune) return;
    const listNow = !decision.skip && passesIgnore;
    let stats: Stats | null | undefined;
    if (listNow) {
      stats = lstatOrNull(abs);
      if (stats === null) return;
      if (this.#stack.length > 0) {
        this.#listThroughPatterns(out);
        this.#listAncestors(this.#stack.length - 1, out);
      }
      const entry = toEntry(rel, abs, stats);
      if (entry !== null) out.push(entry);
    } else if (!decision.skip) {
      // Listed by the patterns but dropped by `ignore`: the pattern layer lists parents now.
      this.#listThroughPatterns(out);
    }
    if (!isDir) return;
    const frame: Frame = {
      rel,
      abs,
      includeInfo: decision.includeInfo,
      excludeInfo: decision.excludeInfo,
      passesIgnore,
      listedByPatterns: !decision.skip,
      listed: listNow,
      stats,
    };
    this.#enter(abs, rel, frame, decision.skip);
  }

  /** Reads a directory and makes it the innermost level; an unreadable one is skipped or fails the walk. */
  #enter(abs: string, rel: string, frame: Frame | undefined, skipped: boolean): void {
    let dirents: Dirent[];
    try {
      dirents = fs.readdirSync(abs, { withFileTypes: true });
    } catch (err) {
      if (isNotExist(err)) return;
      // fsutil tolerates an unreadable directory only when the patterns hide it anyway.
      if (skipped && (errCode(err) === "EACCES" || errCode(err) === "EPERM")) return;
      throw err;
    }
    dirents.sort(compareDirents);
    const prefix = abs.endsWith(path.sep) ? abs : abs + path.sep;
    this.#levels.push({ frame, rel, prefix, dirents, next: 0 });
    if (frame !== undefined) this.#stack.push(frame);
  }

  // The `ignore` layer only sees what the pattern layer lists, and lists a directory it
  // ignores only once it lists something inside: frames track both layers separately.
  #listAncestors(upTo: number, out: ContextWalkEntry[]): void {
    for (let j = 0; j <= upTo; j++) {
      const f = this.#stack[j] as Frame;
      if (f.listed) continue;
      f.listed = true;
      if (f.stats === undefined) f.stats = lstatOrNull(f.abs);
      const entry = f.stats === null ? null : toEntry(f.rel, f.abs, f.stats);
      if (entry !== null) out.push(entry);
    }
  }

  #listThroughPatterns(out: ContextWalkEntry[]): void {
    for (let i = 0; i < this.#stack.length; i++) {
      const f = this.#stack[i] as Frame;
      if (f.listedByPatterns) continue;
      f.listedByPatterns = true;
      if (f.passesIgnore) this.#listAncestors(i, out);
    }
  }
}

/**
 * Finds and parses the ignore file that applies to a build (see `IgnoreFileRule`); null when
 * there is none. Paths are resolved against the current directory.
 */
export async function loadDockerignore(lookup: IgnoreFileLookup): Promise<{ path: string; patterns: string[] } | null> {
  const resolved: IgnoreFileLookup = {
    ...lookup,
    contextDir: path.resolve(lookup.contextDir),
    dockerfilePath: lookup.dockerfilePath === undefined ? undefined : path.resolve(lookup.dockerfilePath),
  };
  for (const candidate of ignoreFileCandidates(resolved)) {
    let text: string;
    try {
      text = await fsp.readFile(candidate, "utf8");
    } catch (err) {
      if (isNotExist(err) || errCode(err) === "EISDIR") continue;
      throw err;
    }
    return { path: candidate, patterns: parseDockerignore(text) };
  }
  return null;
}
