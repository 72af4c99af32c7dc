import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InvalidError, NotFoundError } from "../src/errors.ts";
import { cleanPath, FilePatternMatcher, toIgnorePredicate, toWalkFilter } from "../src/pattern-matcher.ts";

type MatcherRecord = {
  patterns: string[];
  path: string;
  match: boolean;
  function: string;
  source: string;
  error?: string;
  platform?: string;
  note?: string;
  MatchesOrParentMatches_result?: boolean;
};

const records = JSON.parse(
  readFileSync(new URL("../../test/vectors/patternmatcher-upstream.json", import.meta.url), "utf8"),
) as MatcherRecord[];

const label = (r: MatcherRecord, i: number) =>
  `#${i} ${JSON.stringify(r.patterns)} ${JSON.stringify(r.path)} (${r.source.split("@")[0]?.split(":").pop()})`;

const cases = records.map((r, i) => [label(r, i), r] as const);
const failing = cases.filter(([, r]) => r.error !== undefined);
const matching = cases.filter(([, r]) => r.error === undefined);

describe("moby/patternmatcher upstream vectors", () => {
  it("covers every record", () => {
    expect(records).toHaveLength(138);
    expect(failing.length + matching.length).toBe(records.length);
  });

  // Every record targets POSIX semantics (backslash escapes), which Kiln always uses, so the
  // "non-windows" records apply on every platform and none is skipped.
  it.each(matching)("%s", (_, r) => {
    // The deprecated one-level `Matches` records carry the MatchesOrParentMatches value to use.
    const expected = r.function.startsWith("Matches (package-level") ? r.MatchesOrParentMatches_result : r.match;
    expect(typeof expected).toBe("boolean");
    expect(new FilePatternMatcher(...r.patterns).matches(r.path)).toBe(expected);
  });

  it.each(failing)("%s rejects the pattern", (_, r) => {
    // Go rejects most of these in New(); `[Local-Only]` only at match time. Kiln rejects all
    // of them in the constructor, which still fails any build that uses them.
    expect(() => new FilePatternMatcher(...r.patterns)).toThrow(InvalidError);
    if (r.patterns[0] === "!") {
      expect(() => new FilePatternMatcher("!")).toThrow('Illegal exclusion pattern: "!"');
    }
  });
});

describe("pattern semantics", () => {
  const m = (...patterns: string[]) => new FilePatternMatcher(...patterns);

  it.each([
    ["a+b", "a+b", true],
    ["a+b", "aab", false],
    ["(x)", "(x)", true],
    ["(x)", "x", false],
    ["$", "$", true],
    ["a$", "a", false],
    ["{}", "{}", true],
    ["a{1,2}", "a{1,2}", true],
    ["a{1,2}", "a", false],
    [".", "x", false],
    ["*.", "a.", true],
    ["*.", "ab", false],
    ["a|b", "a", false],
    ["a|b", "a|b", true],
    ["*+*", "x+y", true],
    ["*(*", "x(y", true],
    ["^*", "^a", true],
    ["^*", "a", false],
    ["a^b*", "a^bc", true],
  ])("regexp metacharacters are literal: %j vs %j -> %s", (pattern, path, expected) => {
    expect(m(pattern).matches(path)).toBe(expected);
  });

  it.each([
    ["[!a]", "!", true],
    ["[!a]", "b", false],
    ["[^a]", "b", true],
    ["[^a]", "/", true],
    ["[*]", "*", true],
    ["[*]", "x", false],
    ["[?]", "?", true],
    ["[a-c]x", "bx", true],
    ["\\d", "d", true],
    ["\\d", "1", false],
  ])("brackets and escapes follow filepath.Match: %j vs %j -> %s", (pattern, path, expected) => {
    expect(m(pattern).matches(path)).toBe(expected);
  });

  it.each([["[z-a]"], ["a\\"], ["[a"], ["[]"], ["[^]"], ["[a-]"]])("rejects %j with a clear message", (pattern) => {
    expect(() => m(pattern)).toThrow(/Invalid ignore pattern/);
  });

  it("keeps moby's fast paths", () => {
    expect(m("**foo").matches("barfoo")).toBe(true);
    expect(m("**/foo").matches("barfoo")).toBe(false);
    expect(m("abc**").matches("abcdef")).toBe(true);
    expect(m("a**b").matches("axb")).toBe(false);
    expect(m("a**b").matches("ax/b")).toBe(true);
    expect(m("abc/**").matches("abc/x\ny")).toBe(true);
    // A regexp-path `**` stops at newlines, like Go's `.`.
    expect(m("a/**/*.txt").matches("a/x\ny/f.txt")).toBe(false);
  });

  it("handles Modal's gotchas", () => {
    expect(m("*.log").matches("d.log")).toBe(true);
    expect(m("*.log").matches("sub/d.log")).toBe(false);
    expect(m("**/*.log").matches("sub/d.log")).toBe(true);
    expect(m("data").matches("data/x")).toBe(true);
    expect(m("data").matches("data/x/y")).toBe(true);
    expect(m("data/**").matches("data")).toBe(false);
    expect(m("data/**").matches("data/x")).toBe(true);
  });

  it("cleans patterns and paths", () => {
    expect(m("  /foo/  ").patterns).toEqual(["foo"]);
    expect(m("a/./b//c/").patterns).toEqual(["a/b/c"]);
    expect(m("", "   ", "x").patterns).toEqual(["x"]);
    expect(m("!x").patterns).toEqual(["!x"]);
    expect(m("foo").matches("./foo/")).toBe(true);
    expect(m("foo").matches("bar/../foo")).toBe(true);
    expect(m("**").matches(".")).toBe(false);
    expect(m("**").matches("")).toBe(false);
  });

  it("applies rules in order, exclusions only to matched paths", () => {
    const md = m("*.md", "!README.md");
    expect(md.matches("a.md")).toBe(true);
    expect(md.matches("README.md")).toBe(false);
    expect(m("!README.md", "*.md").matches("README.md")).toBe(true);
    expect(m("docs", "!docs/keep", "docs/keep/secret").matches("docs/keep/secret/x")).toBe(true);
    expect(m("docs", "!docs/keep").matches("docs/keep/x")).toBe(false);
  });

  it("matchWithParent reproduces BuildKit's walk-time results", () => {
    const matcher = m("d", "!d/f", "d");
    const dir = matcher.matchWithParent("d");
    expect(dir.matched).toBe(true);
    // BuildKit keeps d/f (the repeated `d` was skipped for the parent); matches() does not.
    expect(matcher.matchWithParent("d/f", dir.info).matched).toBe(false);
    expect(matcher.matches("d/f")).toBe(true);
    expect(() => matcher.matchWithParent("d/f", [true])).toThrow(InvalidError);
  });

  it("cleanPath behaves like Go's path.Clean", () => {
    expect(cleanPath("")).toBe(".");
    expect(cleanPath("a/../../b")).toBe("../b");
    expect(cleanPath("/../a/")).toBe("/a");
    expect(cleanPath("//a//b/.")).toBe("/a/b");
    expect(cleanPath("a/..")).toBe(".");
  });
});

describe("Modal API", () => {
  it("inverts, and inverted matchers never prune", () => {
    const py = new FilePatternMatcher("**/*.py");
    const nonPy = py.invert();
    expect(nonPy.matches("a/b.py")).toBe(false);
    expect(nonPy.matches("a/b.txt")).toBe(true);
    expect(nonPy.canPruneDirectories).toBe(false);
    expect(nonPy.invert().matches("a/b.py")).toBe(true);
    expect(nonPy.invert().canPruneDirectories).toBe(false);
  });

  it("reports whether directories can be pruned", () => {
    expect(new FilePatternMatcher("node_modules").canPruneDirectories).toBe(true);
    expect(new FilePatternMatcher("node_modules", "!node_modules/x").canPruneDirectories).toBe(false);
    expect(new FilePatternMatcher("x", "!y").hasExclusions).toBe(true);
  });

  it("fromFile reads lazily, splits like splitlines and keeps '#' lines as patterns", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-pm-"));
    try {
      const file = path.join(dir, "ignore");
      const matcher = FilePatternMatcher.fromFile(file);
      await writeFile(file, "# c\r\n*.tmp\rbuild\x0cdist\n\n !keep.tmp \n");
      expect(matcher.patterns).toEqual(["# c", "*.tmp", "build", "dist", "!keep.tmp"]);
      expect(matcher.matches("# c")).toBe(true);
      expect(matcher.matches("x.tmp")).toBe(true);
      expect(matcher.matches("keep.tmp")).toBe(false);
      expect(matcher.matches("build/out")).toBe(true);
      expect(matcher.canPruneDirectories).toBe(false);
      expect(() => FilePatternMatcher.fromFile(path.join(dir, "missing")).matches("x")).toThrow(NotFoundError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("fromFile accepts a custom reader and surfaces bad patterns on first use", () => {
    const bad = FilePatternMatcher.fromFile("x", () => "ok\n!\n");
    expect(() => bad.matches("ok")).toThrow('Illegal exclusion pattern: "!"');
    expect(FilePatternMatcher.fromFile("x", () => "a\nb").patterns).toEqual(["a", "b"]);
  });

  it("turns ignore specs into predicates", () => {
    const fromList = toIgnorePredicate(["*.log"]);
    expect(fromList("a.log")).toBe(true);
    expect(fromList.canPruneDirectories).toBe(true);
    const fromFn = toIgnorePredicate((p) => p.startsWith("x"));
    expect(fromFn("xy")).toBe(true);
    expect(fromFn.canPruneDirectories).toBe(false);
    const none = toIgnorePredicate();
    expect(none("anything")).toBe(false);
    expect(toIgnorePredicate(new FilePatternMatcher("a", "!a/b")).canPruneDirectories).toBe(false);
    let reads = 0;
    const lazy = toIgnorePredicate(FilePatternMatcher.fromFile("f", () => (reads++, "a")));
    expect(reads).toBe(0);
    expect(lazy.canPruneDirectories).toBe(true);
    expect(reads).toBe(1);
    expect(() => toIgnorePredicate(["!"])).toThrow(InvalidError);
  });

  it("maps ignore specs onto walk options", () => {
    expect(toWalkFilter()).toEqual({});
    expect(toWalkFilter([])).toEqual({});
    expect(toWalkFilter(["a", "!b"])).toEqual({ excludePatterns: ["a", "!b"] });
    const fn = (p: string) => p === "x";
    expect(toWalkFilter(fn)).toEqual({ ignore: fn });
  });
});
