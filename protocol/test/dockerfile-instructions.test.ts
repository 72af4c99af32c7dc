import { describe, expect, it } from "vitest";
import { DockerfileError } from "../src/dockerfile/errors.ts";
import { type Command, parseInstruction, parseStages, type StageHeader } from "../src/dockerfile/instructions.ts";
import { parseDockerfile } from "../src/dockerfile/parser.ts";
import { loadVector } from "./dockerfile-vectors.ts";

interface InstructionCase {
  name: string;
  dockerfile: string;
  expect_error_contains?: string;
  expect_error_equals?: string;
  expect?: Record<string, unknown>;
}

const cases = loadVector<InstructionCase[]>("instruction_level/instructions.json");

// Upstream parses the file and hands the first instruction to ParseInstruction.
function firstInstruction(dockerfile: string): StageHeader | Command {
  const inst = parseDockerfile(dockerfile).instructions[0];
  if (inst === undefined) throw new Error("no instruction");
  return parseInstruction(inst);
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof DockerfileError) return err.reason;
    throw err;
  }
  throw new Error("expected an error");
}

function view(cmd: StageHeader | Command): Record<string, unknown> {
  switch (cmd.kind) {
    case "copy":
    case "add":
      return {
        DestPath: cmd.destPath,
        SourcePaths: cmd.sourcePaths,
        SourceContents: cmd.sourceContents.map((c) => ({ Path: c.path, Data: c.data, Expand: c.expand })),
      };
    case "run":
      return {
        PrependShell: cmd.prependShell,
        CmdLine: cmd.cmdLine,
        Files: cmd.files.map((f) => ({ Name: f.name, Data: f.data, Chomp: f.chomp })),
        FlagsUsed: cmd.flagsUsed,
      };
    default:
      return {};
  }
}

describe("instruction parsing (instructions/parse_test.go, parse_heredoc_test.go)", () => {
  it.each(cases.map((c, i) => [`${c.name} (#${i})`, c] as const))("%s", (_label, c) => {
    if (c.expect_error_equals !== undefined) {
      expect(reasonOf(() => firstInstruction(c.dockerfile))).toBe(c.expect_error_equals);
    } else if (c.expect_error_contains !== undefined) {
      expect(reasonOf(() => firstInstruction(c.dockerfile))).toContain(c.expect_error_contains);
    } else {
      expect(view(firstInstruction(c.dockerfile))).toMatchObject(c.expect ?? {});
    }
  });
});

describe("instruction details", () => {
  it("splits ENV and LABEL pairs, legacy form included", () => {
    const [env] = parseStages(parseDockerfile('FROM a\nENV A=1 B="2 3"\nENV C 4 5')).stages.flatMap((s) => s.commands);
    expect(env).toMatchObject({
      kind: "env",
      env: [
        { key: "A", value: "1" },
        { key: "B", value: '"2 3"' },
      ],
    });
  });

  it("reads FROM's stage name case-insensitively and validates it", () => {
    expect(firstInstruction("FROM alpine AS Build")).toMatchObject({ kind: "from", baseName: "alpine", name: "build" });
    expect(reasonOf(() => firstInstruction("FROM alpine AS 1x"))).toMatch(/invalid name for build stage: "1x"/);
    expect(reasonOf(() => firstInstruction("FROM a b"))).toBe("FROM requires either one or three arguments");
  });

  it("validates flags: unknown, duplicate, missing value", () => {
    expect(reasonOf(() => firstInstruction("COPY --form=a b c"))).toBe("unknown flag: --form");
    expect(reasonOf(() => firstInstruction("COPY --from=a --from=b c d"))).toBe("duplicate flag specified: from");
    expect(reasonOf(() => firstInstruction("COPY --from c d"))).toBe("missing a value on flag: from");
    expect(reasonOf(() => firstInstruction("COPY --link=maybe c d"))).toMatch(/expecting boolean value/);
    expect(firstInstruction("COPY --link --chmod=755 c d")).toMatchObject({ link: true, chmod: "755" });
  });

  it("reads RUN mounts and rejects variables in from=", () => {
    expect(firstInstruction("RUN --mount=type=bind,from=build,target=/x --mount=type=cache,target=/c make")).toMatchObject({
      mounts: ["type=bind,from=build,target=/x", "type=cache,target=/c"],
      mountFroms: ["build", ""],
    });
    expect(reasonOf(() => firstInstruction("RUN --mount=from=$X,target=/x make"))).toMatch(/doesn't support variable expansion/);
  });

  it("keeps ONBUILD's trigger text and heredocs", () => {
    const cmd = firstInstruction("onbuild  COPY <<EOF /x\nhi\nEOF");
    expect(cmd).toMatchObject({ kind: "onbuild", expression: "COPY <<EOF /x\nhi\nEOF" });
  });

  it("checks HEALTHCHECK types and intervals", () => {
    expect(firstInstruction("HEALTHCHECK --interval=5s CMD curl x")).toMatchObject({ test: ["CMD-SHELL", "curl x"] });
    expect(firstInstruction("HEALTHCHECK NONE")).toMatchObject({ test: ["NONE"] });
    expect(reasonOf(() => firstInstruction("HEALTHCHECK CONNECT TCP 7000"))).toMatch(/Unknown type "CONNECT"/);
    expect(reasonOf(() => firstInstruction("HEALTHCHECK --interval=5 CMD x"))).toMatch(/invalid duration/);
  });

  it("requires SHELL in JSON form", () => {
    expect(reasonOf(() => firstInstruction("SHELL /bin/bash -c"))).toBe("SHELL requires the arguments to be in JSON form");
  });

  it("allows only ARG before the first FROM", () => {
    const { metaArgs, stages } = parseStages(parseDockerfile("ARG A=1 B\nFROM x\nARG C"));
    expect(metaArgs.flatMap((a) => a.args)).toEqual([
      { key: "A", value: "1" },
      { key: "B", value: undefined },
    ]);
    expect(stages).toHaveLength(1);
    expect(() => parseStages(parseDockerfile("RUN x\nFROM y"))).toThrow(/no build stage in current context/);
  });

  it("reports the line of the offending instruction", () => {
    expect(() => parseStages(parseDockerfile("FROM a\n\nCOPY x"))).toThrow(/^Dockerfile line 3: COPY requires at least two/);
  });
});
