/**
 * Walks a local build context the way BuildKit's tonistiigi/fsutil does (`NewFilterFS` over
 * `filepath.WalkDir`): entries sorted by name at every level, include and exclude patterns
 * with `!` re-includes, excluded directories listed only once something below them is, and
 * subtrees skipped only when no pattern could bring anything inside them back.
 */
import { type Dirent, promises as fsp, type Stats } from "node:fs";
import path from "node:path";
import type { ContextEntry } from "./context-tar.ts";
import { type IgnoreFileLookup, ignoreFileCandidates, parseDockerignore } from "./dockerignore.ts";
import { InvalidError, NotFoundError } from "./errors.ts";
import { FilePatternMatcher, type IgnorePredicate, type IgnoreSpec, type MatchInfo, toIgnorePredicate } from "./pattern-matcher.ts";

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

// Characters that make a pattern more than a literal path prefix (fsutil's `patternChars`).
const PATTERN_CHARS = /[*[\]?^\\]/;

function withoutTrailingGlob(pattern: string): string {
  let p = pattern;
  if (p.endsWith("/**")) p = p.slice(0, -3);
  if (p.endsWith("/*")) p = p.slice(0, -2);
  return p;
}

/** fsutil's include/exclude decisions, with its rules for when a subtree may be skipped. */
class PatternFilter {
  readonly include: FilePatternMatcher | undefined;
  readonly exclude: FilePatternMatcher | undefined;
  // Literal prefixes of the rules that could still match below an unmatched/excluded dir,
  // or null when some rule has wildcards and every directory must be entered.
  #includePrefixes: string[] | null = null;
  #exceptionPrefixes: string[] | null = null;

  constructor(opts: WalkContextOptions) {
    const wrap = (what: string, patterns: readonly string[]) => {
      try {
        return new FilePatternMatcher(...patterns);
      } catch (err) {
        throw new InvalidError(`invalid ${what} patterns: ${(err as Error).message}`, { cause: err });
      }
    };
    if (opts.includePatterns !== undefined && opts.includePatterns.length > 0) {
      this.include = wrap("include", opts.includePatterns);
      this.#includePrefixes = literalPrefixes(this.include, false);
    }
    if (opts.excludePatterns !== undefined && opts.excludePatterns.length > 0) {
      this.exclude = wrap("exclude", opts.excludePatterns);
      this.#exceptionPrefixes = literalPrefixes(this.exclude, true);
    }
  }

  /** `prune` skips the subtree; `skip` hides the entry but still walks a directory. */
  decide(rel: string, isDir: boolean, parent: Frame | undefined): Decision {
    const decision: Decision = { prune: false, skip: false, includeInfo: undefined, excludeInfo: undefined };
    if (this.include !== undefined) {
      const { matched, info } = this.include.matchWithParent(rel, parent?.includeInfo);
      decision.includeInfo = info;
      if (!matched) {
        if (isDir && this.#includePrefixes !== null && !reachesInto(this.#includePrefixes, rel)) {
          decision.prune = true;
          return decision;
        }
        decision.skip = true;
      }
    }
    if (this.exclude !== undefined) {
      const { matched, info } = this.exclude.matchWithParent(rel, parent?.excludeInfo);
      decision.excludeInfo = info;
      if (matched) {
        if (isDir && this.#exceptionPrefixes !== null && !reachesInto(this.#exceptionPrefixes, rel)) {
          decision.prune = true;
          return decision;
        }
        decision.skip = true;
      }
    }
    return decision;
  }

  /** fsutil's `Open` check for one path. */
  allows(rel: string): boolean {
    if (this.include !== undefined && !this.include.matches(rel)) return false;
    return this.exclude === undefined || !this.exclude.matches(rel);
  }
}

function literalPrefixes(matcher: FilePatternMatcher, exclusions: boolean): string[] | null {
  const prefixes: string[] = [];
  for (const rule of matcher.rules) {
    if (rule.exclusion !== exclusions) continue;
    const p = withoutTrailingGlob(rule.pattern);
    if (PATTERN_CHARS.test(p)) return null;
    prefixes.push(`${p}/`);
  }
  return prefixes;
}

function reachesInto(prefixes: readonly string[], dir: string): boolean {
  return prefixes.some((p) => p.startsWith(`${dir}/`));
}

type Decision = { prune: boolean; skip: boolean; includeInfo: MatchInfo | undefined; excludeInfo: MatchInfo | undefined };

/** A directory on the current walk path, with whether each filter layer has listed it yet. */
type Frame = {
  rel: string;
  abs: string;
  includeInfo: MatchInfo | undefined;
  excludeInfo: MatchInfo | undefined;
  passesIgnore: boolean;
  listedByPatterns: boolean;
  listed: boolean;
  stats: Promise<Stats | null> | undefined;
};

/**
 * Lists `root`'s contents depth-first in fsutil order. Options are validated now (invalid
 * patterns throw `InvalidError` here); the file system is read as the generator is consumed.
 * An unreadable directory fails the walk unless the patterns exclude it.
 */
export function walkContext(root: string, opts: WalkContextOptions = {}): AsyncGenerator<ContextWalkEntry, void, undefined> {
  if (opts.followSymlinks !== undefined && opts.followSymlinks !== false) {
    throw new InvalidError("walkContext never follows symlinks");
  }
  const filter = new PatternFilter(opts);
  const ignore = opts.ignore === undefined ? undefined : toIgnorePredicate(opts.ignore);
  return walk(root, filter, ignore);
}

/** Whether `relPath` is visible through the include/exclude patterns (fsutil `Open`). */
export function contextIncludes(relPath: string, opts: Pick<WalkContextOptions, "includePatterns" | "excludePatterns">): boolean {
  return new PatternFilter(opts).allows(relPath);
}

async function resolveRoot(root: string): Promise<string> {
  let real: string;
  try {
    real = await fsp.realpath(root);
  } catch (err) {
    if (isNotExist(err)) throw new NotFoundError(`context directory ${root} does not exist`, { cause: err });
    throw err;
  }
  if (!(await fsp.stat(real)).isDirectory()) throw new InvalidError(`context path ${root} is not a directory`);
  return real;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isNotExist(err: unknown): boolean {
  const code = errCode(err);
  return code === "ENOENT" || code === "ENOTDIR";
}

async function lstatOrNull(abs: string): Promise<Stats | null> {
  try {
    return await fsp.lstat(abs);
  } catch (err) {
    // Vanished since readdir: fsutil skips such entries too.
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

async function toEntry(rel: string, abs: string, st: Stats): Promise<ContextWalkEntry | null> {
  const mode = st.mode & 0o7777;
  if (st.isDirectory()) return { path: rel, absPath: abs, type: "dir", mode, size: 0 };
  if (st.isFile()) return { path: rel, absPath: abs, type: "file", mode, size: st.size };
  if (st.isSymbolicLink()) {
    const linkTarget = await fsp.readlink(abs);
    return { path: rel, absPath: abs, type: "symlink", mode, size: st.size, linkTarget };
  }
  // Sockets, FIFOs and devices have no place in an uploaded context; reading a FIFO would hang.
  return null;
}

// Bounds concurrent lstat calls per directory, so a huge directory does not flood libuv.
const STAT_BATCH = 64;

async function* walk(root: string, filter: PatternFilter, ignore: IgnorePredicate | undefined): AsyncGenerator<ContextWalkEntry> {
  const realRoot = await resolveRoot(root);
  const stack: Frame[] = [];

  const frameEntry = async (f: Frame): Promise<ContextWalkEntry | null> => {
    f.stats ??= lstatOrNull(f.abs);
    const st = await f.stats;
    return st === null ? null : toEntry(f.rel, f.abs, st);
  };

  // The `ignore` layer only sees what the pattern layer lists, and lists a directory it
  // ignores only once it lists something inside: frames track both layers separately.
  async function* listAncestors(upTo: number): AsyncGenerator<ContextWalkEntry> {
    for (let j = 0; j <= upTo; j++) {
      const f = stack[j] as Frame;
      if (f.listed) continue;
      f.listed = true;
      const entry = await frameEntry(f);
      if (entry !== null) yield entry;
    }
  }

  async function* listThroughPatterns(): AsyncGenerator<ContextWalkEntry> {
    for (let i = 0; i < stack.length; i++) {
      const f = stack[i] as Frame;
      if (f.listedByPatterns) continue;
      f.listedByPatterns = true;
      if (f.passesIgnore) yield* listAncestors(i);
    }
  }

  async function* walkDir(abs: string, rel: string, parent: Frame | undefined, parentSkipped: boolean): AsyncGenerator<ContextWalkEntry> {
    let dirents: Dirent[];
    try {
      dirents = await fsp.readdir(abs, { withFileTypes: true });
    } catch (err) {
      if (isNotExist(err)) return;
      // fsutil tolerates an unreadable directory only when the patterns hide it anyway.
      if (parentSkipped && (errCode(err) === "EACCES" || errCode(err) === "EPERM")) return;
      throw err;
    }
    dirents.sort((a, b) => compareNames(a.name, b.name));
    const visits = dirents.map((d) => {
      const childRel = rel === "" ? d.name : `${rel}/${d.name}`;
      const isDir = d.isDirectory();
      const decision = filter.decide(childRel, isDir, parent);
      let passesIgnore = true;
      if (!decision.prune && ignore !== undefined && ignore(childRel)) {
        // Pruning here equals the ignore layer skipping the directory once it sees it.
        if (isDir && ignore.canPruneDirectories) decision.prune = true;
        passesIgnore = false;
      }
      const listNow = !decision.prune && !decision.skip && passesIgnore;
      return {
        rel: childRel,
        abs: path.join(abs, d.name),
        isDir,
        decision,
        passesIgnore,
        listNow,
        stats: undefined as Promise<Stats | null> | undefined,
      };
    });
    for (let start = 0; start < visits.length; start += STAT_BATCH) {
      const batch = visits.slice(start, start + STAT_BATCH);
      for (const v of batch) if (v.listNow) v.stats = lstatOrNull(v.abs);
      await Promise.all(batch.map((v) => v.stats));
      for (const v of batch) {
        if (v.decision.prune) continue;
        if (v.listNow) {
          const st = await v.stats;
          if (st === null || st === undefined) continue;
          yield* listThroughPatterns();
          yield* listAncestors(stack.length - 1);
          const entry = await toEntry(v.rel, v.abs, st);
          if (entry !== null) yield entry;
        } else if (!v.decision.skip) {
          // Listed by the patterns but dropped by `ignore`: the pattern layer lists parents now.
          yield* listThroughPatterns();
        }
        if (!v.isDir) continue;
        const frame: Frame = {
          rel: v.rel,
          abs: v.abs,
          includeInfo: v.decision.includeInfo,
          excludeInfo: v.decision.excludeInfo,
          passesIgnore: v.passesIgnore,
          listedByPatterns: !v.decision.skip,
          listed: v.listNow,
          stats: v.stats,
        };
        stack.push(frame);
        try {
          yield* walkDir(v.abs, v.rel, frame, v.decision.skip);
        } finally {
          stack.pop();
        }
      }
    }
  }

  yield* walkDir(realRoot, "", undefined, false);
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
