import { describe, expect, it } from "vitest";
import { dumpDockerfile } from "../src/dockerfile/dump.ts";
import { DockerfileError } from "../src/dockerfile/errors.ts";
import { parseJsonArgs } from "../src/dockerfile/json-args.ts";
import { parseDockerfile } from "../src/dockerfile/parser.ts";
import { parseWords } from "../src/dockerfile/shell-words.ts";
import { InvalidError } from "../src/errors.ts";
import { loadVector, topLevelVectorFiles } from "./dockerfile-vectors.ts";

interface ParseCase {
  name: string;
  dockerfile: string;
  result: string | null;
  error?: boolean;
  expected_root_lines?: [number, number];
  expected_child_lines?: [number, number][];
}

const topLevel = topLevelVectorFiles().map((f) => loadVector<ParseCase>(f));

describe("BuildKit parser goldens (testfiles/ and testfiles-negative/)", () => {
  it.each(topLevel.filter((v) => v.error !== true).map((v) => [v.name, v] as const))("%s dumps exactly like BuildKit", (_name, v) => {
    expect(dumpDockerfile(parseDockerfile(v.dockerfile))).toBe(v.result);
  });

  it.each(topLevel.filter((v) => v.error === true).map((v) => [v.name, v] as const))("%s is rejected", (_name, v) => {
    expect(() => parseDockerfile(v.dockerfile)).toThrow(InvalidError);
  });

  it.each(topLevel.filter((v) => v.expected_root_lines !== undefined).map((v) => [v.name, v] as const))(
    "%s reports BuildKit's line numbers",
    (_name, v) => {
      const ast = parseDockerfile(v.dockerfile);
      expect([ast.startLine, ast.endLine]).toEqual(v.expected_root_lines);
      expect(ast.instructions.map((i) => [i.startLine, i.endLine])).toEqual(v.expected_child_lines);
    },
  );
});

interface HeredocCase {
  name: string;
  dockerfile: string;
  result: string;
  expected_heredocs_per_instruction_after_FROM: {
    original_first_line: string;
    heredocs: { name: string; content: string; expand: boolean; chomp: boolean; fd: number }[] | null;
  }[];
}

describe("heredoc extraction (parser_heredoc_test.go)", () => {
  const cases = loadVector<HeredocCase[]>("instruction_level/heredoc_parse.json");
  it.each(cases.map((c) => [c.name, c] as const))("%s: dump matches BuildKit", (_name, c) => {
    expect(dumpDockerfile(parseDockerfile(c.dockerfile))).toBe(c.result);
  });

  const rows = cases.flatMap((c) =>
    c.expected_heredocs_per_instruction_after_FROM.map((row, i) => [`${c.name} #${i + 1}: ${row.original_first_line}`, c, i, row] as const),
  );
  it.each(rows)("%s", (_label, c, i, row) => {
    const inst = parseDockerfile(c.dockerfile).instructions[i + 1];
    const got = (inst?.heredocs ?? []).map((h) => ({
      name: h.name,
      content: h.content,
      expand: h.expand,
      chomp: h.chomp,
      fd: h.fileDescriptor,
    }));
    expect(got).toEqual(row.heredocs ?? []);
  });
});

interface WarningCase {
  name: string;
  dockerfile?: string;
  dockerfile_generator?: string;
  result?: string;
  expect?: { warning_count: number; [k: string]: unknown };
  observed_warnings?: string[];
  expect_error_equals?: string;
}

describe("parser warnings and limits (parser_test.go)", () => {
  const cases = loadVector<WarningCase[]>("instruction_level/parser_warnings_and_limits.json");
  const byName = new Map(cases.map((c) => [c.name, c]));

  it("empty-continuation-line-warnings: dump and warnings match BuildKit", () => {
    const c = byName.get("empty-continuation-line-warnings");
    expect(c?.dockerfile).toBeDefined();
    const ast = parseDockerfile(c?.dockerfile ?? "");
    expect(dumpDockerfile(ast)).toBe(c?.result);
    expect(ast.warnings).toHaveLength(c?.expect?.warning_count ?? -1);
    expect(ast.warnings.map((w) => w.message)).toEqual(c?.observed_warnings);
  });

  it("line-too-long: a line over 64 KiB is rejected with BuildKit's message", () => {
    const c = byName.get("line-too-long");
    // The record's generator is a Python expression; this is the same text.
    expect(c?.dockerfile_generator).toBe("'\\n\\t\\tFROM image\\n\\t\\tLABEL test=' + 'a'*65536 + '\\n'");
    const text = `\n\t\tFROM image\n\t\tLABEL test=${"a".repeat(65536)}\n`;
    let caught: unknown;
    try {
      parseDockerfile(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DockerfileError);
    expect((caught as DockerfileError).reason).toBe(c?.expect_error_equals);
  });
});

interface JsonVectors {
  valid: { input: string; expected: string[] }[];
  invalid_not_string_array: string[];
}

describe("JSON (exec) form detection (json_test.go)", () => {
  const v = loadVector<JsonVectors>("instruction_level/json_arrays.json");
  it.each(v.valid.map((c) => [c.input, c.expected] as const))("%j is a JSON array of strings", (input, expected) => {
    expect(parseJsonArgs(input)).toEqual({ kind: "json", values: expected });
    const [cmd] = parseDockerfile(`CMD ${input}`).instructions;
    expect(cmd?.json).toBe(true);
    expect(cmd?.args).toEqual(expected);
  });
  it.each(v.invalid_not_string_array.map((c) => [c] as const))("%j is rejected as a non-string array", (input) => {
    expect(parseJsonArgs(input)).toEqual({ kind: "not-string-array" });
    expect(() => parseDockerfile(`CMD ${input}`)).toThrow(/arrays must be comprised of strings only/);
  });
  it("falls back to the shell form for JSON-looking text that does not decode", () => {
    expect(parseJsonArgs("['a']")).toEqual({ kind: "not-json" });
    expect(parseJsonArgs('["a", 1e999]')).toEqual({ kind: "not-json" });
    expect(parseDockerfile('RUN ["a" "b"]').instructions[0]?.args).toEqual(['["a" "b"]']);
  });
});

interface WordsVectors {
  cases: { input: string; expected: string[] }[];
}

describe("parseWords keeps quotes (parser_test.go TestParseWords)", () => {
  const v = loadVector<WordsVectors>("instruction_level/parse_words.json");
  it.each(v.cases.map((c) => [c.input, c.expected] as const))("%j", (input, expected) => {
    expect(parseWords(input, "\\")).toEqual(expected);
  });
});

describe("parser details", () => {
  it("keeps the keyword's case but lower-cases the command", () => {
    const [inst] = parseDockerfile("CoPy --from=x a b").instructions;
    expect(inst).toMatchObject({ command: "copy", keyword: "CoPy", flags: ["--from=x"], args: ["a", "b"] });
  });

  it("attaches ONBUILD's trigger and flattens its arguments", () => {
    const [inst] = parseDockerfile('ONBUILD RUN ["a", "b"]').instructions;
    expect(inst?.args).toEqual(["RUN", "a", "b"]);
    expect(inst?.sub).toMatchObject({ command: "run", json: true, args: ["a", "b"] });
  });

  it("applies `# escape=` to continuations and word parsing", () => {
    const ast = parseDockerfile('# escape=`\nFROM x\nENV A="b`\n  c" B=x` y');
    expect(ast.escapeToken).toBe("`");
    expect(ast.instructions[1]?.args).toEqual(["A", '"b  c"', "=", "B", "x` y", "="]);
  });

  it("rejects an invalid or repeated escape directive", () => {
    expect(() => parseDockerfile("# escape=x\nFROM a")).toThrow(/invalid escape token/);
    expect(() => parseDockerfile("# escape=`\n# escape=`\nFROM a")).toThrow(/only one escape parser directive/);
  });

  it("ignores a directive that is not at the top", () => {
    expect(parseDockerfile("FROM a\n# escape=`\nRUN a \\\n b").escapeToken).toBe("\\");
  });

  it("rejects an unterminated heredoc with its location", () => {
    expect(() => parseDockerfile("FROM a\nRUN <<EOF\necho")).toThrow(/line 2-3: unterminated heredoc/);
  });

  it("strips a UTF-8 byte-order mark", () => {
    expect(parseDockerfile("\ufeffFROM a").instructions[0]?.command).toBe("from");
  });

  it("marks JSON-form instructions and never reads heredocs for them", () => {
    const [run] = parseDockerfile('RUN ["<<EOF"]\nEOF').instructions;
    expect(run?.json).toBe(true);
    expect(run?.heredocs).toEqual([]);
  });
});
