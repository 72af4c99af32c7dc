import { describe, expect, it } from "vitest";
import { extractBuilderFlags, splitCommand } from "../src/dockerfile/split-command.ts";
import { compareUtf8, goQuote, goSplit, isGoSpace, trimSpace } from "../src/dockerfile/text.ts";

describe("goQuote matches Go's strconv.Quote", () => {
  it.each([
    ["abc", '"abc"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ["\x00\x07\b\f\n\r\t\v\x7f", '"\\x00\\a\\b\\f\\n\\r\\t\\v\\x7f"'],
    ["♥ ☃ é", '"♥ ☃ é"'],
    ["\u00a0\u00ad\u2028", '"\\u00a0\\u00ad\\u2028"'],
    ["\u{1f600}\u{e0001}", '"\u{1f600}\\U000e0001"'],
  ])("%j", (input, expected) => {
    expect(goQuote(input)).toBe(expected);
  });
});

describe("Go character classes", () => {
  it("counts U+0085 and U+00A0 as space but not U+FEFF", () => {
    expect(["\u0085", "\u00a0", "\u2003", "\v"].every(isGoSpace)).toBe(true);
    expect(isGoSpace("\ufeff")).toBe(false);
    expect(trimSpace("\u0085 a \u3000")).toBe("a");
  });

  it("splits like Go's regexp.Split", () => {
    expect(goSplit("a  b c", /[ ]+/, -1)).toEqual(["a", "b", "c"]);
    expect(goSplit("a  b c", /[ ]+/, 2)).toEqual(["a", "b c"]);
    expect(goSplit(" a ", /[ ]+/, -1)).toEqual(["", "a", ""]);
    expect(goSplit("", /[ ]+/, -1)).toEqual([""]);
  });

  it("sorts by UTF-8 bytes", () => {
    expect(["\uff5e", "\u{1f600}", "z"].sort(compareUtf8)).toEqual(["z", "\uff5e", "\u{1f600}"]);
  });
});

describe("splitCommand / extractBuilderFlags", () => {
  it("splits keyword, flags and rest", () => {
    expect(splitCommand("  COPY --from=a\t--chown='x y' -- src dst ")).toEqual({
      keyword: "COPY",
      flags: ["--from=a", "--chown=x y"],
      rest: "src dst",
    });
  });

  it("stops at the first word that is not a flag", () => {
    expect(extractBuilderFlags("--a -b --c")).toEqual({ rest: "-b --c", flags: ["--a"] });
  });

  it("widens each byte of a non-ASCII flag to a rune, as BuildKit does", () => {
    expect(extractBuilderFlags("--x=é rest")).toEqual({ rest: "rest", flags: ["--x=\u00c3\u00a9"] });
  });
});
