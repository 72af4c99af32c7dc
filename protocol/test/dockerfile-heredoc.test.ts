import { describe, expect, it } from "vitest";
import { chompHeredocContent, heredocsFromLine, parseHeredoc } from "../src/dockerfile/heredoc.ts";
import { InvalidError } from "../src/errors.ts";
import { loadVector } from "./dockerfile-vectors.ts";

interface HeredocHelperVectors {
  ParseHeredoc_single_word: { valid_name_EOF: string[]; invalid_error: string[]; not_a_heredoc: string[] };
  heredocsFromLine: { line: string; names: string[] }[];
  ChompHeredocContent: { input: string; output: string }[];
}

const v = loadVector<HeredocHelperVectors>("instruction_level/heredoc_helpers.json");

describe("ParseHeredoc (parser_heredoc_test.go TestParseHeredocHelpers)", () => {
  it.each(v.ParseHeredoc_single_word.valid_name_EOF.map((w) => [w] as const))("%j is a heredoc named EOF", (word) => {
    expect(parseHeredoc(word)?.name).toBe("EOF");
  });
  it.each(v.ParseHeredoc_single_word.invalid_error.map((w) => [w] as const))("%j is a malformed heredoc", (word) => {
    expect(() => parseHeredoc(word)).toThrow(InvalidError);
  });
  it.each(v.ParseHeredoc_single_word.not_a_heredoc.map((w) => [w] as const))("%j is not a heredoc", (word) => {
    expect(parseHeredoc(word)).toBeUndefined();
  });

  it("reports chomp, file descriptor and whether the body expands", () => {
    expect(parseHeredoc("3<<-'EOF'")).toEqual({ name: "EOF", fileDescriptor: 3, chomp: true, expand: false });
    expect(parseHeredoc("<<eo\\'f")).toEqual({ name: "eo'f", fileDescriptor: 0, chomp: false, expand: true });
  });
});

describe("heredocsFromLine (TestHeredocsFromLine)", () => {
  // Upstream only compares the names of the heredocs it finds, position by position, and
  // an empty expectation means "none". `RUN <<- EOF` expects EOF but BuildKit's lexer
  // splits `<<-` from `EOF` and finds none; that passes upstream and here alike.
  it.each(v.heredocsFromLine.map((c) => [c.line, c.names] as const))("%j", (line, names) => {
    const found = heredocsFromLine(line).map((h) => h.name);
    if (names.length === 0) expect(found).toEqual([]);
    for (const [i, name] of found.entries()) expect(name).toBe(names[i]);
    if (line !== "RUN <<- EOF") expect(found).toEqual(names);
  });
});

describe("ChompHeredocContent (TestHeredocChomp)", () => {
  it.each(v.ChompHeredocContent.map((c) => [c.input, c.output] as const))("%j", (input, output) => {
    expect(chompHeredocContent(input)).toBe(output);
  });

  it("strips tabs after \\n only, not after a bare \\r", () => {
    expect(chompHeredocContent("\ta\r\tb\n\tc")).toBe("a\r\tb\nc");
  });
});
