/**
 * fsutil's pattern layer (`NewFilterFS`): include and exclude patterns with `!` re-includes,
 * decided per path from its parent's per-pattern results, and the rules for when a subtree
 * may be skipped because no pattern could bring anything inside it back.
 */
import { InvalidError } from "./errors.ts";
import { FilePatternMatcher, type MatchInfo } from "./pattern-matcher.ts";

// Characters that make a pattern more than a literal path prefix (fsutil's `patternChars`).
const PATTERN_CHARS = /[*[\]?^\\]/;

function withoutTrailingGlob(pattern: string): string {
  let p = pattern;
  if (p.endsWith("/**")) p = p.slice(0, -3);
  if (p.endsWith("/*")) p = p.slice(0, -2);
  return p;
}

/** fsutil's include/exclude decisions, with its rules for when a subtree may be skipped. */
export class PatternFilter {
  readonly include: FilePatternMatcher | undefined;
  readonly exclude: FilePatternMatcher | undefined;
  // Literal prefixes of the rules that could still match below an unmatched/excluded dir,
  // or null when some rule has wildcards and every directory must be entered.
  #includePrefixes: string[] | null = null;
  #exceptionPrefixes: string[] | null = null;

  constructor(opts: PatternOptions) {
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
  decide(rel: string, isDir: boolean, parent: ParentMatch | undefined): Decision {
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

/** What the patterns decided for one entry, and the per-pattern results its children start from. */
export type Decision = { prune: boolean; skip: boolean; includeInfo: MatchInfo | undefined; excludeInfo: MatchInfo | undefined };

/** The pattern results of the directory holding an entry. */
export type ParentMatch = { includeInfo: MatchInfo | undefined; excludeInfo: MatchInfo | undefined };

/** The include and exclude patterns of a walk (fsutil `FilterOpt`). */
export type PatternOptions = { includePatterns?: readonly string[] | undefined; excludePatterns?: readonly string[] | undefined };
