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

/** One cleaned pattern as the matcher evaluates it. */
export interface PatternRule {
  /** The cleaned pattern without its `!` prefix. */
  readonly pattern: string;
  /** True for `!pattern` rules, which re-include what earlier rules matched. */
  readonly exclusion: boolean;
}

type Kind = "exact" | "prefix" | "suffix" | "regex";

interface CompiledRule extends PatternRule {
  readonly kind: Kind;
  /** Literal operand of the exact/prefix/suffix fast paths. */
  readonly literal: string;
  readonly regex: RegExp | undefined;
}

// Go's unicode.IsSpace set; String.prototype.trim differs (it strips U+FEFF, keeps U+0085).
const GO_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const GO_TRIM = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, "gu");

/** Go's `strings.TrimSpace`. */
export function goTrimSpace(s: string): string {
  return s.replace(GO_TRIM, "");
}

/** Go's `path.Clean` on a slash-separated path (lexical: `.`/`..`/duplicate slashes resolved). */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  let leadingDotDots = 0;
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > leadingDotDots) out.pop();
      else if (!rooted) {
        out.push("..");
        leadingDotDots++;
      }
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return `/${joined}`;
  return joined === "" ? "." : joined;
}

/** Go's `path.Dir`: everything but the last element, cleaned. */
export function dirPath(p: string): string {
  return cleanPath(p.slice(0, p.lastIndexOf("/") + 1));
}

const REGEX_SYNTAX = /[\\^$.*+?()[\]{}|/]/;
// `.` in Go's regexp syntax stops at newlines; JS `.` also stops at \r and U+2028/9.
const ANY = "[^\\n]*";

function literalRegex(ch: string): string {
  return REGEX_SYNTAX.test(ch) ? `\\${ch}` : ch;
}

function classMember(cp: number): string {
  const ch = String.fromCodePoint(cp);
  return /[A-Za-z0-9]/.test(ch) ? ch : `\\u{${cp.toString(16)}}`;
}

const badPattern = (pattern: string, why: string) => new InvalidError(`Invalid ignore pattern ${JSON.stringify(pattern)}: ${why}`);

/** Parses `[...]` starting after the `[`; returns the JS class and the index after `]`. */
function compileClass(cps: readonly string[], start: number, pattern: string): [string, number] {
  let k = start;
  let negated = false;
  if (cps[k] === "^") {
    negated = true;
    k++;
  }
  let body = "";
  let ranges = 0;
  // Go's getEsc: one class character, `\` escaping the next; `-` and `]` may not start an item.
  const readChar = (): number => {
    const ch = cps[k];
    if (ch === undefined) throw badPattern(pattern, "unterminated character class");
    if (ch === "-" || ch === "]") throw badPattern(pattern, `unexpected ${JSON.stringify(ch)} in character class`);
    let c = ch;
    if (ch === "\\") {
      k++;
      const escaped = cps[k];
      if (escaped === undefined) throw badPattern(pattern, "unterminated character class");
      c = escaped;
    }
    k++;
    if (k >= cps.length) throw badPattern(pattern, "unterminated character class");
    return c.codePointAt(0) ?? 0;
  };
  for (;;) {
    if (cps[k] === "]" && ranges > 0) return [`[${negated ? "^" : ""}${body}]`, k + 1];
    const lo = readChar();
    let hi = lo;
    if (cps[k] === "-") {
      k++;
      hi = readChar();
    }
    // Go's filepath.Match accepts a reversed range, but moby's regexp compile then fails on
    // every match (the build errors); rejecting it up front gives the same outcome, earlier.
    if (hi < lo) throw badPattern(pattern, "character class range is out of order");
    body += hi === lo ? classMember(lo) : `${classMember(lo)}-${classMember(hi)}`;
    ranges++;
  }
}

/** Validates one cleaned pattern body and picks moby's match strategy for it. */
function compileRule(pattern: string, exclusion: boolean): CompiledRule {
  const cps = Array.from(pattern);
  let re = "^";
  let kind: Kind = "exact";
  for (let i = 0, k = 0; k < cps.length; i++) {
    const ch = cps[k++] as string;
    if (ch === "*") {
      if (cps[k] === "*") {
        k++;
        if (cps[k] === "/") k++; // `**/` is the same as `**`
        if (k >= cps.length) {
          if (kind === "exact") kind = "prefix";
          else {
            re += ANY;
            kind = "regex";
          }
        } else {
          re += `(?:${ANY}/)?`;
          kind = "regex";
        }
        // moby's quirk, kept on purpose: a leading `**` switches to a plain suffix test
        // unless a later wildcard forces the regexp, so `**foo` matches `barfoo`.
        if (i === 0) kind = "suffix";
      } else {
        re += "[^/]*";
        kind = "regex";
      }
    } else if (ch === "?") {
      re += "[^/]";
      kind = "regex";
    } else if (ch === "\\") {
      const next = cps[k++];
      if (next === undefined) throw badPattern(pattern, "trailing backslash");
      re += literalRegex(next);
      kind = "regex";
    } else if (ch === "[") {
      const [cls, end] = compileClass(cps, k, pattern);
      re += cls;
      k = end;
      kind = "regex";
    } else if (ch === "]") {
      re += "\\]";
      kind = "regex";
    } else {
      re += literalRegex(ch);
    }
  }
  let regex: RegExp | undefined;
  try {
    if (kind === "regex") regex = new RegExp(`${re}$`, "u");
  } catch (err) {
    throw badPattern(pattern, (err as Error).message);
  }
  const literal = kind === "prefix" ? pattern.slice(0, -2) : kind === "suffix" ? pattern.slice(2) : pattern;
  return { pattern, exclusion, kind, literal, regex };
}

function ruleMatches(rule: CompiledRule, path: string): boolean {
  switch (rule.kind) {
    case "exact":
      return path === rule.literal;
    case "prefix":
      return path.startsWith(rule.literal);
    case "suffix":
      // `**/foo` also matches a top-level `foo`.
      return path.endsWith(rule.literal) || (rule.literal.startsWith("/") && path === rule.literal.slice(1));
    case "regex":
      return rule.regex?.test(path) ?? false;
  }
}

/** Whether `rule` matches `path` or one of its ancestors (moby's parent-dir loop). */
function ruleMatchesOrParent(rule: CompiledRule, path: string): boolean {
  if (ruleMatches(rule, path)) return true;
  const parent = dirPath(path);
  if (parent === ".") return false;
  const dirs = parent.split("/");
  for (let i = 1; i <= dirs.length; i++) {
    if (ruleMatches(rule, dirs.slice(0, i).join("/"))) return true;
  }
  return false;
}

/** moby's `New`: trim, clean, split off `!`, validate. Empty patterns are skipped. */
function parsePatterns(patterns: readonly string[]): CompiledRule[] {
  const rules: CompiledRule[] = [];
  for (const raw of patterns) {
    // Modal strips surrounding slashes before cleaning, so `/foo` and `foo/` both mean `foo`.
    const trimmed = goTrimSpace(raw).replace(/^\/+|\/+$/g, "");
    if (trimmed === "") continue;
    let p = cleanPath(trimmed);
    let exclusion = false;
    if (p.startsWith("!")) {
      if (p.length === 1) throw new InvalidError('Illegal exclusion pattern: "!"');
      exclusion = true;
      p = p.slice(1);
    }
    rules.push(compileRule(p, exclusion));
  }
  return rules;
}

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
