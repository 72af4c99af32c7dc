import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadDockerignore, walkContext } from "../src/context-walk.ts";
import { ignoreFileCandidates, parseDockerignore, selectIgnoreFile } from "../src/dockerignore.ts";
import { InvalidError } from "../src/errors.ts";
import { FilePatternMatcher } from "../src/pattern-matcher.ts";

type ReadAllRecord = { input: string | null; expected: string[]; note?: string };
type BuildSelection = {
  name: string;
  files: Record<string, string>;
  builds?: { dockerfile: string; context_has: string[]; context_lacks: string[] }[];
  expect_error?: boolean;
};
type ModalSelection = { name: string; context: string; dockerfile_path: string; existing: string[]; expected: string | null };
type PropertyRecord = {
  patterns: string[];
  source: string;
  expected_pattern_count?: number;
  expected_has_exclusions?: boolean;
  expect_error?: string;
  expected_can_prune_directories?: boolean;
  inverted?: boolean;
  from_file_text?: string;
  checks?: Record<string, boolean>;
};
type Vectors = {
  read_all: ReadAllRecord[];
  read_all_derived: ReadAllRecord[];
  selection: (BuildSelection | ModalSelection)[];
  pattern_properties: PropertyRecord[];
};

const vectors = JSON.parse(readFileSync(new URL("../../test/vectors/dockerignore.json", import.meta.url), "utf8")) as Vectors;

const readAll = [...vectors.read_all, ...vectors.read_all_derived].map((r, i) => [`#${i} ${JSON.stringify(r.input)}`, r] as const);
const isModal = (s: BuildSelection | ModalSelection): s is ModalSelection => "existing" in s;
const modalSelections = vectors.selection.filter(isModal).map((s) => [s.name, s] as const);
const buildSelections = vectors.selection.filter((s): s is BuildSelection => !isModal(s)).map((s) => [s.name, s] as const);
const properties = vectors.pattern_properties.map(
  (p, i) => [`#${i} ${JSON.stringify(p.patterns)}${p.inverted ? " inverted" : ""}`, p] as const,
);

describe("dockerignore vectors", () => {
  it("covers every record", () => {
    const count = readAll.length + modalSelections.length + buildSelections.length + properties.length;
    expect(count).toBe(33);
  });

  describe("read_all", () => {
    it.each(readAll)("%s", (_, r) => {
      expect(parseDockerignore(r.input)).toEqual(r.expected);
    });
  });

  describe("selection (Modal's find_dockerignore_file cases)", () => {
    // The two rules only differ for a plain .dockerignore beside a nested Dockerfile and for
    // candidates outside the context; none of these records hits that, so both must agree.
    it.each(modalSelections)("%s", (_, s) => {
      const existing = new Set(s.existing);
      const lookup = { contextDir: s.context, dockerfilePath: s.dockerfile_path, exists: (p: string) => existing.has(p) };
      expect(selectIgnoreFile({ ...lookup, rule: "modal" })).toBe(s.expected);
      expect(selectIgnoreFile(lookup)).toBe(s.expected);
    });
  });

  describe("selection (BuildKit builds)", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "kiln-di-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it.each(buildSelections)("%s", async (name, s) => {
      const ctx = path.join(dir, name);
      await mkdir(ctx, { recursive: true });
      for (const [file, text] of Object.entries(s.files)) await writeFile(path.join(ctx, file), text);
      const builds = s.builds ?? [{ dockerfile: "Dockerfile", context_has: [], context_lacks: [] }];
      for (const build of builds) {
        // Pure selection over the file names...
        const chosen = selectIgnoreFile({ contextDir: ".", dockerfilePath: build.dockerfile, exists: (p) => p in s.files });
        const patterns = chosen === null ? [] : parseDockerignore(s.files[chosen] ?? "");
        // ...and the same through the file system, down to the walked context.
        const loaded = await loadDockerignore({ contextDir: ctx, dockerfilePath: path.join(ctx, build.dockerfile) });
        expect(loaded?.patterns ?? []).toEqual(patterns);
        if (s.expect_error) {
          expect(() => new FilePatternMatcher(...patterns)).toThrow(InvalidError);
          expect(() => walkContext(ctx, { excludePatterns: patterns })).toThrow(InvalidError);
          continue;
        }
        const listed: string[] = [];
        for await (const e of walkContext(ctx, { excludePatterns: patterns })) listed.push(e.path);
        for (const p of build.context_has) expect(listed).toContain(p);
        for (const p of build.context_lacks) expect(listed).not.toContain(p);
      }
    });
  });

  describe("pattern_properties", () => {
    it.each(properties)("%s", (_, p) => {
      if (p.expect_error !== undefined) {
        expect(() => new FilePatternMatcher(...p.patterns)).toThrow('Illegal exclusion pattern: "!"');
        return;
      }
      const matcher =
        p.from_file_text !== undefined
          ? FilePatternMatcher.fromFile("ignorefile", () => p.from_file_text ?? "")
          : new FilePatternMatcher(...p.patterns);
      if (p.expected_pattern_count !== undefined) expect(matcher.patterns).toHaveLength(p.expected_pattern_count);
      if (p.expected_has_exclusions !== undefined) expect(matcher.hasExclusions).toBe(p.expected_has_exclusions);
      for (const [file, expected] of Object.entries(p.checks ?? {})) expect(matcher.matches(file)).toBe(expected);
      if (p.expected_can_prune_directories !== undefined) {
        const subject = p.inverted ? matcher.invert() : matcher;
        expect(subject.canPruneDirectories).toBe(p.expected_can_prune_directories);
      }
    });
  });
});

describe("parseDockerignore", () => {
  it("reads Docker's documented example", () => {
    expect(parseDockerignore("# comment\n*/temp*\n*/*/temp*\ntemp?\n")).toEqual(["*/temp*", "*/*/temp*", "temp?"]);
  });

  it("strips a BOM only at the start and keeps exclusions normalized", () => {
    expect(parseDockerignore("a\n\uFEFFb")).toEqual(["a", "\uFEFFb"]);
    expect(parseDockerignore("!/a/../b/\n")).toEqual(["!b"]);
    expect(parseDockerignore("\r\n  \n#x\n")).toEqual([]);
  });
});

describe("Docker's documented .dockerignore examples", () => {
  const ignored = (text: string, file: string) => new FilePatternMatcher(...parseDockerignore(text)).matches(file);

  it.each([
    ["*/temp*", "somedir/temporary.txt", true],
    ["*/temp*", "somedir/temp", true],
    ["*/temp*", "somedir/temp/inner.txt", true],
    ["*/temp*", "temporary.txt", false],
    ["*/temp*", "a/b/temporary.txt", false],
    ["*/*/temp*", "somedir/subdir/temporary.txt", true],
    ["*/*/temp*", "somedir/temporary.txt", false],
    ["temp?", "tempa", true],
    ["temp?", "tempb", true],
    ["temp?", "temp", false],
    ["temp?", "tempab", false],
    ["temp?", "dir/tempa", false],
    ["**/*.go", "main.go", true],
    ["**/*.go", "a/b/c/main.go", true],
    ["**/*.go", "a/b/c/main.gox", false],
    ["*.md\n!README.md", "CHANGES.md", true],
    ["*.md\n!README.md", "README.md", false],
    ["*.md\n!README*.md\nREADME-secret.md", "README-secret.md", true],
    ["*.md\n!README*.md\nREADME-secret.md", "README-public.md", false],
    ["*.md\nREADME-secret.md\n!README*.md", "README-secret.md", false],
    ["**", "anything", true],
    ["**", "deep/down/file", true],
    ["**", ".", false],
    ["**\n!Dockerfile", "Dockerfile", false],
    ["**\n!Dockerfile", "src/app.py", true],
  ])("%j ignores %j: %s", (text, file, expected) => {
    expect(ignored(text, file)).toBe(expected);
  });
});

describe("ignore file selection rules", () => {
  const exists =
    (...paths: string[]) =>
    (p: string) =>
      paths.includes(p);

  it("prefers <Dockerfile>.dockerignore beside the Dockerfile, then the context root", () => {
    expect(ignoreFileCandidates({ contextDir: "ctx", dockerfilePath: "ctx/sub/app.Dockerfile" })).toEqual([
      "ctx/sub/app.Dockerfile.dockerignore",
      "ctx/.dockerignore",
    ]);
    expect(selectIgnoreFile({ contextDir: ".", dockerfilePath: "Dockerfile", exists: exists(".dockerignore") })).toBe(".dockerignore");
    expect(selectIgnoreFile({ contextDir: "ctx", exists: exists("ctx/.dockerignore") })).toBe("ctx/.dockerignore");
    expect(selectIgnoreFile({ contextDir: "ctx", exists: exists() })).toBeNull();
    expect(ignoreFileCandidates({ contextDir: "", dockerfilePath: "./Dockerfile" })).toEqual(["Dockerfile.dockerignore", ".dockerignore"]);
    expect(ignoreFileCandidates({ contextDir: "/abs/ctx/", dockerfilePath: "/abs/ctx/Dockerfile" })).toEqual([
      "/abs/ctx/Dockerfile.dockerignore",
      "/abs/ctx/.dockerignore",
    ]);
  });

  it("buildkit reads the Dockerfile's own ignore file even outside the context; modal does not", () => {
    const lookup = {
      contextDir: "ctx",
      dockerfilePath: "docker/Dockerfile",
      exists: exists("docker/Dockerfile.dockerignore", "ctx/.dockerignore"),
    };
    expect(selectIgnoreFile(lookup)).toBe("docker/Dockerfile.dockerignore");
    expect(selectIgnoreFile({ ...lookup, rule: "modal" })).toBe("ctx/.dockerignore");
  });

  it("modal also accepts a plain .dockerignore beside a nested Dockerfile", () => {
    const lookup = {
      contextDir: "ctx",
      dockerfilePath: "ctx/sub/Dockerfile",
      exists: exists("ctx/sub/.dockerignore", "ctx/.dockerignore"),
    };
    expect(selectIgnoreFile({ ...lookup, rule: "modal" })).toBe("ctx/sub/.dockerignore");
    expect(selectIgnoreFile(lookup)).toBe("ctx/.dockerignore");
  });
});
