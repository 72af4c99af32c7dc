import { describe, expect, it } from "vitest";
import { DirectiveParser, detectSyntax, parseDirective } from "../src/dockerfile/directives.ts";
import { loadVector } from "./dockerfile-vectors.ts";

interface DirectiveVectors {
  "DirectiveParser.ParseAll": { input: string; expected: { name: string; value: string }[] }[];
  DetectSyntax: { input: string; input_hex_prefix?: string; ok: boolean; ref?: string; cmdline?: string; line?: number }[];
  "ParseDirective(check)": { input: string; ok: boolean; value?: string; cmdline?: string; line?: number }[];
}

const v = loadVector<DirectiveVectors>("instruction_level/directives.json");

// The only prefix in the vectors is a UTF-8 BOM (EF BB BF), i.e. U+FEFF in a JS string.
function withPrefix(input: string, hex?: string): string {
  if (hex === undefined) return input;
  expect(hex).toBe("efbbbf");
  return `\ufeff${input}`;
}

describe("DirectiveParser.ParseAll (directives_test.go TestDirectives)", () => {
  it.each(v["DirectiveParser.ParseAll"].map((c) => [JSON.stringify(c.input), c] as const))("%s", (_label, c) => {
    const got = new DirectiveParser().parseAll(c.input).map(({ name, value }) => ({ name, value }));
    expect(got).toEqual(c.expected);
  });

  it("rejects a repeated directive", () => {
    expect(() => new DirectiveParser().parseAll("# syntax=a\n# syntax=b\n")).toThrow(/only one syntax parser directive/);
  });
});

describe("DetectSyntax (TestDetectSyntax / TestDetectSyntaxBOM)", () => {
  it.each(v.DetectSyntax.map((c, i) => [`#${i} ${JSON.stringify(c.input)}`, c] as const))("%s", (_label, c) => {
    const got = detectSyntax(withPrefix(c.input, c.input_hex_prefix));
    if (!c.ok) {
      expect(got).toBeUndefined();
      return;
    }
    expect(got?.value).toBe(c.ref);
    if (c.cmdline !== undefined) expect(got?.cmdline).toBe(c.cmdline);
    if (c.line !== undefined) expect(got?.line).toBe(c.line);
  });
});

describe("ParseDirective(check) (TestParseDirective)", () => {
  it.each(v["ParseDirective(check)"].map((c, i) => [`#${i} ${JSON.stringify(c.input)}`, c] as const))("%s", (_label, c) => {
    const got = parseDirective("check", c.input);
    if (!c.ok) {
      expect(got).toBeUndefined();
      return;
    }
    expect(got?.value).toBe(c.value);
    if (c.cmdline !== undefined) expect(got?.cmdline).toBe(c.cmdline);
    if (c.line !== undefined) expect(got?.line).toBe(c.line);
  });
});
