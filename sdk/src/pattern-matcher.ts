/**
 * Docker-compatible ignore-pattern matching: a port of moby/patternmatcher (the library behind
 * `.dockerignore` and BuildKit's context filters) with the API of Modal's `FilePatternMatcher`.
 *
 * Grammar is Go's `filepath.Match` plus `**`, exactly as Docker documents it. Where moby's
 * pattern-to-regexp translation contradicts that documented grammar, Kiln follows the grammar:
 * `^` outside a class is a literal (moby leaves it as a regexp anchor, so `a^b*` never matches),
 * `*` and `?` inside `[...]` are literals (moby splices `[^/]*` into the class), an escaped
 * character is always itself (moby hands `\d`, `\w`, `\x`... to Go's regexp engine), and
 * `[[:alpha:]]` is a plain bracket set. Every other pattern matches exactly as in Docker,
 * including moby's exact/prefix/suffix fast paths (e.g. `**foo` matches `barfoo`).
 */
import { InvalidError, NotFoundError } from "./errors.ts";
import { cleanPath } from "./go-path.ts";
import { type CompiledRule, type PatternRule, parsePatterns, ruleMatches, ruleMatchesOrParent } from "./pattern-compile.ts";

// Importers of the matcher (the dockerignore reader, tests) also use its Go helpers and rule type.
export { cleanPath, dirPath, goTrimSpace } from "./go-path.ts";
export type { PatternRule } from "./pattern-compile.ts";

/** Something that decides whether a slash-separated relative path is matched (ignored). */
export interface PathMatcher {
  /** Whether `path` (or one of its parent directories) is matched. */
  matches(path: string): boolean;
  /** True when a matched directory can be skipped without looking inside it. */
  readonly canPruneDirectories: boolean;
  /** A matcher that matches exactly the paths this one does not. */
  invert(): PathMatcher;
}

/** What callers may pass as an ignore rule: patterns, a matcher, or a predicate on relative paths. */
export type IgnoreSpec = string[] | PathMatcher | ((relativePath: string) => boolean);

/** A path predicate that also says whether matched directories may be pruned during a walk. */
export type IgnorePredicate = ((relativePath: string) => boolean) & { readonly canPruneDirectories: boolean };

/** Per-pattern results for a directory, handed to its children (moby's `MatchInfo`). */
export type MatchInfo = readonly boolean[];

/** Python's `str.splitlines()`: every Unicode line boundary, no trailing empty line. */
function splitLines(text: string): string[] {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: Python's line boundaries include these control characters.
  const lines = text.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/u);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function readTextWithNode(path: string): string {
  const fs = globalThis.process?.getBuiltinModule?.("node:fs");
  if (fs === undefined) {
    throw new InvalidError("FilePatternMatcher.fromFile needs Node's fs here; pass a readText function");
  }
  try {
    return fs.readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new NotFoundError(`Ignore file not found: ${path}`, { cause: err });
    }
    throw err;
  }
}

/** Docker/Modal ignore patterns, evaluated like moby's `MatchesOrParentMatches`. */
export class FilePatternMatcher implements PathMatcher {
  #rules: CompiledRule[] | undefined;
  #load: (() => readonly string[]) | undefined;

  /** Validates every pattern now; throws `InvalidError` for `!` alone or malformed globs. */
  constructor(...patterns: string[]) {
    this.#rules = parsePatterns(patterns);
  }

  /**
   * A matcher whose patterns are read from `path` on first use, one per line. Modal quirk,
   * kept for parity: unlike `.dockerignore` parsing there is no comment handling, so a
   * `# note` line is the literal pattern `# note`, and a UTF-8 BOM stays in the first pattern.
   */
  static fromFile(path: string, readText: (path: string) => string = readTextWithNode): FilePatternMatcher {
    const matcher = new FilePatternMatcher();
    matcher.#rules = undefined;
    matcher.#load = () => splitLines(readText(path));
    return matcher;
  }

  #compiled(): CompiledRule[] {
    if (this.#rules === undefined) {
      this.#rules = parsePatterns(this.#load?.() ?? []);
    }
    return this.#rules;
  }

  /** The cleaned patterns, `!`-prefixed for exclusions (reads the file for `fromFile`). */
  get patterns(): readonly string[] {
    return this.#compiled().map((r) => (r.exclusion ? `!${r.pattern}` : r.pattern));
  }

  /** The cleaned rules in evaluation order. */
  get rules(): readonly PatternRule[] {
    return this.#compiled().map(({ pattern, exclusion }) => ({ pattern, exclusion }));
  }

  /** True when at least one `!` rule exists (moby's `Exclusions()`). */
  get hasExclusions(): boolean {
    return this.#compiled().some((r) => r.exclusion);
  }

  /** Pruning a matched directory is only safe when no `!` rule could re-include a child. */
  get canPruneDirectories(): boolean {
    return !this.hasExclusions;
  }

  /**
   * Whether `path` or any parent directory is matched, the last applicable rule winning.
   * `path` is slash-separated and relative; it is cleaned first, and `.` never matches.
   */
  matches(path: string): boolean {
    const file = cleanPath(path);
    if (file === ".") return false;
    let matched = false;
    for (const rule of this.#compiled()) {
      // An inclusion cannot change an already-matched path, nor an exclusion an unmatched one.
      if (rule.exclusion !== matched) continue;
      if (ruleMatchesOrParent(rule, file)) matched = !rule.exclusion;
    }
    return matched;
  }

  /**
   * moby's `MatchesUsingParentResults`, used by BuildKit's context walk: `parent` is the info
   * returned for the containing directory (omit it for top-level entries). It can differ from
   * `matches` when rules are repeated after an exclusion, exactly as it does in BuildKit.
   */
  matchWithParent(path: string, parent?: MatchInfo): { matched: boolean; info: MatchInfo } {
    const rules = this.#compiled();
    if (parent !== undefined && parent.length !== 0 && parent.length !== rules.length) {
      throw new InvalidError("wrong number of values in parent match info");
    }
    const hasParent = parent !== undefined && parent.length !== 0;
    const info = new Array<boolean>(rules.length).fill(false);
    let matched = false;
    rules.forEach((rule, i) => {
      let match = hasParent ? (parent[i] ?? false) : false;
      if (!match) {
        if (rule.exclusion !== matched) return;
        match = hasParent ? ruleMatches(rule, path) : ruleMatchesOrParent(rule, path);
      }
      info[i] = match;
      if (match) matched = !rule.exclusion;
    });
    return { matched, info };
  }

  /** Modal's `~matcher`: matches what this matcher does not; never prunes. */
  invert(): PathMatcher {
    return new InvertedMatcher(this);
  }
}

class InvertedMatcher implements PathMatcher {
  #inner: PathMatcher;
  // Whatever the inner matcher skips may hold paths this one must report.
  readonly canPruneDirectories = false;

  constructor(inner: PathMatcher) {
    this.#inner = inner;
  }

  matches(path: string): boolean {
    return !this.#inner.matches(path);
  }

  // Modal's `~~m` is a fresh custom matcher too, so double inversion still never prunes.
  invert(): PathMatcher {
    return new InvertedMatcher(this);
  }
}

/** Turns an `IgnoreSpec` into a predicate; plain functions never allow pruning (as in Modal). */
export function toIgnorePredicate(spec?: IgnoreSpec): IgnorePredicate {
  if (spec === undefined) return Object.assign((_: string) => false, { canPruneDirectories: true });
  if (typeof spec === "function") return Object.assign((p: string) => spec(p), { canPruneDirectories: false });
  const matcher = Array.isArray(spec) ? new FilePatternMatcher(...spec) : spec;
  // A getter, not a copied value: reading it would load a `fromFile` matcher prematurely.
  return Object.defineProperty((p: string) => matcher.matches(p), "canPruneDirectories", {
    get: () => matcher.canPruneDirectories,
  }) as IgnorePredicate;
}

/** The filtering part of `walkContext`'s options. */
export type WalkFilter = { excludePatterns?: string[]; ignore?: IgnoreSpec };

/**
 * Maps an `IgnoreSpec` onto `walkContext` options. Pattern lists become BuildKit exclude
 * patterns so a Docker context is filtered exactly as fsutil filters it; matchers and
 * predicates are applied as Modal applies them.
 */
export function toWalkFilter(spec?: IgnoreSpec): WalkFilter {
  if (spec === undefined) return {};
  if (Array.isArray(spec)) return spec.length === 0 ? {} : { excludePatterns: [...spec] };
  return { ignore: spec };
}
