/**
 * One moby/patternmatcher `Pattern`: validating a cleaned pattern, choosing moby's match
 * strategy for it (exact, prefix, suffix or regexp), and testing paths against it. The
 * grammar, and where Kiln departs from moby's regexp translation, is in pattern-matcher.ts.
 */
import { InvalidError } from "./errors.ts";
import { cleanPath, dirPath, goTrimSpace } from "./go-path.ts";

/** One cleaned pattern as the matcher evaluates it. */
export interface PatternRule {
  /** The cleaned pattern without its `!` prefix. */
  readonly pattern: string;
  /** True for `!pattern` rules, which re-include what earlier rules matched. */
  readonly exclusion: boolean;
}

type Kind = "exact" | "prefix" | "suffix" | "regex";

/** A validated rule with the match strategy moby picks for it. */
export interface CompiledRule extends PatternRule {
  readonly kind: Kind;
  /** Literal operand of the exact/prefix/suffix fast paths. */
  readonly literal: string;
  readonly regex: RegExp | undefined;
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

/** Whether `rule` matches `path` itself (moby's `Pattern.match`). */
export function ruleMatches(rule: CompiledRule, path: string): boolean {
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
export function ruleMatchesOrParent(rule: CompiledRule, path: string): boolean {
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
export function parsePatterns(patterns: readonly string[]): CompiledRule[] {
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
