// Rendering a layer's Dockerfile: FROM base resolution and the secret mount added to every
// RUN form (shell, exec, heredoc, continued lines, existing flags), checked by reparsing.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseDockerfile } from "@kiln-build/protocol/dockerfile";
import { describe, expect, it } from "vitest";
import { DockerfileRenderError, renderDockerfile, SECRET_ENV_TARGET, secretEnvFile } from "../src/dockerfile.ts";

const MOUNT = `--mount=type=secret,id=kiln-env,target=${SECRET_ENV_TARGET}`;
const runs = (text: string) => parseDockerfile(text).instructions.filter((i) => i.command === "run");

describe("renderDockerfile", () => {
  it("points FROM base at the parent image and leaves root layers alone", () => {
    expect(renderDockerfile({ commands: ["FROM base", "RUN echo hi"], parentReference: "reg:5000/l:abc", secretEnv: false })).toBe(
      "FROM reg:5000/l:abc\nRUN echo hi\n",
    );
    expect(renderDockerfile({ commands: ["FROM python:3.12", "ENV A=1"], parentReference: null, secretEnv: false })).toBe(
      "FROM python:3.12\nENV A=1\n",
    );
    expect(() => renderDockerfile({ commands: ["FROM base"], parentReference: null, secretEnv: false })).toThrow(DockerfileRenderError);
  });

  it("adds the secret mount and sources the file in shell-form RUN steps, keeping user flags", () => {
    const text = renderDockerfile({
      commands: ["FROM base", "ENV X=1", "RUN apt-get update", "RUN --mount=type=cache,target=/root/.cache pip install torch", "COPY . /"],
      parentReference: "p",
      secretEnv: true,
    });
    const [a, b] = runs(text);
    expect(a!.flags).toEqual([MOUNT]);
    expect(a!.args).toEqual([`. ${SECRET_ENV_TARGET} && apt-get update`]);
    expect(b!.flags).toEqual(["--mount=type=cache,target=/root/.cache", MOUNT]);
    expect(b!.args).toEqual([`. ${SECRET_ENV_TARGET} && pip install torch`]);
    expect(text).toContain("ENV X=1\n");
    expect(text).toContain("COPY . /\n");
  });

  it("rewrites a RUN continued over several lines into one logical line", () => {
    const text = renderDockerfile({
      commands: ["FROM base", "RUN apt-get update && \\", "    apt-get install -y curl", "ENV A=1"],
      parentReference: "p",
      secretEnv: true,
    });
    const [run] = runs(text);
    expect(run!.args[0]).toBe(`. ${SECRET_ENV_TARGET} && apt-get update &&     apt-get install -y curl`);
    expect(parseDockerfile(text).instructions.map((i) => i.command)).toEqual(["from", "run", "env"]);
  });

  it("wraps exec-form RUN in a shell that loads the file and execs the original argv", () => {
    const text = renderDockerfile({ commands: ["FROM base", 'RUN ["python", "-c", "print(1)"]'], parentReference: "p", secretEnv: true });
    const [run] = runs(text);
    expect(run!.json).toBe(true);
    expect(run!.args).toEqual(["/bin/sh", "-c", `. ${SECRET_ENV_TARGET} && exec "$@"`, "sh", "python", "-c", "print(1)"]);
  });

  it("loads the file on the first line of a heredoc script, and refuses #! scripts", () => {
    const text = renderDockerfile({
      commands: ["FROM base", "RUN <<EOF", "echo one", "echo two", "EOF", "ENV A=1"],
      parentReference: "p",
      secretEnv: true,
    });
    const [run] = runs(text);
    expect(run!.flags).toEqual([MOUNT]);
    expect(run!.heredocs[0]!.content).toBe(`. ${SECRET_ENV_TARGET}\necho one\necho two\n`);
    expect(() =>
      renderDockerfile({
        commands: ["FROM base", "RUN <<EOF", "#!/usr/bin/env python3", "print(1)", "EOF"],
        parentReference: "p",
        secretEnv: true,
      }),
    ).toThrow(/#!/);
    // A command that reads a heredoc is an ordinary shell line.
    const piped = runs(
      renderDockerfile({ commands: ["FROM base", "RUN python3 <<EOF", "print(1)", "EOF"], parentReference: "p", secretEnv: true }),
    );
    expect(piped[0]!.args[0]).toBe(`. ${SECRET_ENV_TARGET} && python3 <<EOF`);
  });

  it("adds GPU device flags to every RUN step and nothing else", () => {
    const text = renderDockerfile({
      commands: ["FROM base", "RUN nvidia-smi", "ONBUILD RUN echo later", "RUN true"],
      parentReference: "p",
      secretEnv: false,
      runFlags: ["--device=nvidia.com/gpu=0"],
    });
    expect(runs(text).map((r) => r.flags)).toEqual([["--device=nvidia.com/gpu=0"], ["--device=nvidia.com/gpu=0"]]);
    expect(text).toContain("ONBUILD RUN echo later\n");
  });

  it("appends extra lines (the runFunction step) and rewrites them too", () => {
    const text = renderDockerfile({
      commands: ["FROM base"],
      parentReference: "p",
      secretEnv: true,
      extraLines: ["RUN node /run/kiln/function/run.mjs"],
    });
    expect(runs(text)[0]!.args).toEqual([`. ${SECRET_ENV_TARGET} && node /run/kiln/function/run.mjs`]);
  });
});

describe("secretEnvFile", () => {
  it("gives sh exactly the values, whatever characters they hold", async () => {
    const values = { PLAIN: "abc", QUOTES: `it's "quoted" $HOME \`cmd\``, MULTI: "line1\nline2\n", EMPTY: "" };
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-env-"));
    try {
      await writeFile(path.join(dir, "env"), secretEnvFile({ ...values, "BAD-NAME": "skipped" }));
      for (const [name, value] of Object.entries(values)) {
        expect(execFileSync("sh", ["-c", `. ${path.join(dir, "env")} && printf %s "$${name}"`], { encoding: "utf8" })).toBe(value);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
