import { describe, expect, it } from "vitest";
import { type EnvGetter, ShellLex } from "../src/dockerfile/shell-expand.ts";
import { reversePattern, shellPatternToRegExp } from "../src/dockerfile/shell-pattern.ts";
import { loadVector } from "./dockerfile-vectors.ts";

interface ExpansionVectors {
  env: Record<string, string>;
  cases: { platform: "all" | "unix" | "windows"; word: string; line: number; expected?: string; expect_error?: boolean }[];
}

// Windows rows differ only in how variables are looked up: names are case-insensitive.
function envFor(vars: Record<string, string>, platform: string): EnvGetter {
  if (platform !== "windows") return new Map(Object.entries(vars));
  return { get: (name) => Object.entries(vars).find(([k]) => k.toUpperCase() === name.toUpperCase())?.[1] };
}

describe("ProcessWord: expansion and quote removal (envVarTest)", () => {
  const v = loadVector<ExpansionVectors>("instruction_level/shell_word_expansion.json");
  const lex = new ShellLex();
  it.each(v.cases.map((c) => [`line ${c.line} [${c.platform}] ${JSON.stringify(c.word)}`, c] as const))("%s", (_label, c) => {
    const env = envFor(v.env, c.platform);
    if (c.expect_error === true) {
      expect(() => lex.processWord(c.word, env)).toThrow(/failed to process/);
    } else {
      expect(lex.processWord(c.word, env)).toBe(c.expected);
    }
  });
});

interface WordsVectors {
  cases: { input: string; env: string[]; line: number; expected_words?: string[]; expect_error?: boolean }[];
}

describe("ProcessWords: expansion then word splitting (wordsTest)", () => {
  const v = loadVector<WordsVectors>("instruction_level/shell_words.json");
  const lex = new ShellLex();
  it.each(v.cases.map((c) => [`line ${c.line} ${JSON.stringify(c.input)}`, c] as const))("%s", (_label, c) => {
    const env = new Map(
      c.env.map((kv): [string, string] => {
        const eq = kv.indexOf("=");
        return [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
    );
    if (c.expect_error === true) expect(() => lex.processWords(c.input, env)).toThrow();
    else expect(lex.processWords(c.input, env)).toEqual(c.expected_words);
  });
});

describe("modifiers beyond the vectors (cases from BuildKit's lex_test.go)", () => {
  const lex = new ShellLex();
  const env = (vars: Record<string, string>) => new Map(Object.entries(vars));
  it.each([
    ["${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", { FOO: "xxx", BAR: "" }, "xxx  ccc"],
    ["${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", { FOO: "xxx", BAR: "" }, "xxx bbb ccc"],
    ["${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", { FOO: "xxx", BAR: "" }, "aaa bbb "],
    ["${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", { FOO: "xxx", BAR: "" }, "aaa  "],
    ["${FOO?aaa}", { FOO: "xxx" }, "xxx"],
    ["${BAR?bbb}", { BAR: "" }, ""],
    ["${FOO#()[]{\\}^$.\\*\\?|\\\\}", { FOO: "()[]{}^$.*?|\\x" }, "x"],
    ["${FOO%%\\**}", { FOO: "xx**" }, "xx"],
    ["${FOO#*x*y}", { FOO: "xxyy" }, "y"],
    ["${FOO#*}", { FOO: "xxyy" }, "xxyy"],
    ["${FOO#$BAR}", { FOO: "xxyy", BAR: "x" }, "xyy"],
    ["${FOO##*x}", { FOO: "xxyy" }, "yy"],
    ["${FOO#?\\?}", { FOO: "???y" }, "?y"],
    ["${ABC:-.}${FOO%x}${ABC:-.}", { FOO: "xxyy" }, ".xxyy."],
    ["${FOO%%\\**\\*}", { FOO: "a***yy*" }, "a"],
    ["${FOO%y}", { FOO: "xxyy" }, "xxy"],
    ["${FOO%%y*}", { FOO: "xxyy" }, "xx"],
    ["${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", { FOO: "/foo*/*/*.txt", NEEDLE: "\\*/" }, "/foo.*/*.txt - /foo..*.txt"],
    ["${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", { FOO: "/tmp/tmp/bar.txt", NEEDLE: "/tmp" }, "/tmp/bar.txt - /bar.txt"],
    ["${FOO//\\//\\/}", { FOO: "/tmp/foo.txt" }, "\\/tmp\\/foo.txt"],
    ["${FOO/$BAR/ww}", { FOO: "xxyy", BAR: "" }, "wwxxyy"],
    ["${FOO///}", { FOO: "xxyy" }, "xxyy"],
    ["${FOO//*/r}", { FOO: "ab" }, "r"],
    // Go's replace-all template sees `$0` (the match) once the lexer kept the escape.
    ["${FOO//x/[\\$0]}", { FOO: "axbx" }, "a[\\x]b[\\x]"],
  ])("%s", (word, vars, expected) => {
    expect(lex.processWord(word, env(vars))).toBe(expected);
  });

  it.each([
    ["${BAZ?ccc}", {}, /BAZ: ccc/],
    ["${BAR:?bbb}", { BAR: "" }, /BAR: bbb/],
    ["${BAZ:?}", {}, /BAZ: is not allowed to be unset/],
    ["${BAR:?}", { BAR: "" }, /BAR: is not allowed to be empty/],
    ["${FOO=aaa}", { FOO: "x" }, /unsupported modifier/],
    ["${FOO//ww}", { FOO: "x" }, /missing '\/' in \$\{\}/],
    ["${FOO#\\x}", { FOO: "x" }, /invalid escape/],
  ])("%s is an error", (word, vars, message) => {
    expect(() => lex.processWord(word, env(vars))).toThrow(message);
  });

  it("keeps unset variables as written when asked (heredoc detection mode)", () => {
    const raw = new ShellLex({ rawQuotes: true, skipUnsetEnv: true });
    expect(raw.processWord("a $X ${Y:-z} 'q'", new Map())).toBe("a $X ${Y:-z} 'q'");
  });

  it("honours a backtick escape character", () => {
    const tick = new ShellLex({ escapeToken: "`" });
    expect(tick.processWord("a`$b\\c", new Map([["b", "B"]]))).toBe("a$b\\c");
  });

  it("keeps `<< word` together as one word", () => {
    expect(new ShellLex().processWords("cat << EOF > out", new Map())).toEqual(["cat", "<< EOF", ">", "out"]);
  });

  it("reports matched and unmatched variables", () => {
    const r = new ShellLex().process("$A ${B:-x}", new Map([["A", "1"]]));
    expect([...r.matched]).toEqual(["A"]);
    expect([...r.unmatched]).toEqual(["B"]);
  });
});

describe("shell patterns (lex_test.go TestConvertShellPatternToRegex / TestReversePattern)", () => {
  it.each([
    ["a\\*c", "c\\*a"],
    ["\\\\\\ab", "b\\a\\\\"],
    ["ab\\", "\\ba"],
    ["\\\\b", "b\\\\"],
  ])("reverses %j as %j", (pattern, expected) => {
    expect(reversePattern(pattern)).toBe(expected);
  });

  it.each(["\\", "\\x", "\\\\\\"])("rejects the escape in %j", (pattern) => {
    expect(() => shellPatternToRegExp(pattern, true, true)).toThrow(/invalid escape/);
  });

  it("matches like Go's `.`: any character except a newline, `\\r` included", () => {
    expect(shellPatternToRegExp("a?b", true, true).test("a\rb")).toBe(true);
    expect(shellPatternToRegExp("a?b", true, true).test("a\nb")).toBe(false);
  });
});
