import { describe, expect, it } from "vitest";
import { dockerfileContextPaths } from "../src/dockerfile/context-paths.ts";
import { DockerfileError } from "../src/dockerfile/errors.ts";
import { InvalidError } from "../src/errors.ts";

const paths = dockerfileContextPaths;

function lines(...l: string[]): string {
  return `${l.join("\n")}\n`;
}

const MULTI_STAGE = lines(
  "FROM golang:1.22 AS builder",
  "WORKDIR /src",
  "COPY go.mod go.sum ./",
  "COPY cmd/ cmd/",
  "RUN go build -o /out/app ./cmd",
  "",
  "FROM alpine AS docs",
  "COPY docs/ /docs/",
  "",
  "FROM builder AS tester",
  "COPY testdata/ /testdata/",
  "",
  "FROM gcr.io/distroless/static",
  "COPY --from=builder /out/app /app",
  "COPY --from=0 /src/go.mod /go.mod",
  "COPY config.yaml /etc/app/",
);

describe("dockerfileContextPaths: stages", () => {
  it("collects only the stages the last stage needs", () => {
    expect(paths(MULTI_STAGE)).toEqual(["cmd", "config.yaml", "go.mod", "go.sum"]);
  });

  it("follows --target, including FROM <stage> chains", () => {
    expect(paths(MULTI_STAGE, { target: "docs" })).toEqual(["docs"]);
    expect(paths(MULTI_STAGE, { target: "tester" })).toEqual(["cmd", "go.mod", "go.sum", "testdata"]);
    expect(paths(MULTI_STAGE, { target: "BUILDER" })).toEqual(["cmd", "go.mod", "go.sum"]);
  });

  it("follows COPY --from=<index> and never reads the context for --from sources", () => {
    const df = lines("FROM alpine", "COPY a.txt /", "FROM alpine", "COPY b.txt /", "FROM scratch", "COPY --from=1 /b.txt /");
    expect(paths(df)).toEqual(["b.txt"]);
    expect(paths(lines("FROM alpine", "COPY --from=nginx:latest /etc/nginx /x", "COPY --from=busybox /bin/sh /sh"))).toEqual([]);
  });

  it("follows RUN --mount=from=<stage>", () => {
    const df = lines(
      "FROM alpine AS deps",
      "COPY package.json /",
      "FROM alpine",
      "RUN --mount=type=bind,from=deps,source=/package.json,target=/p cat /p",
    );
    expect(paths(df)).toEqual(["package.json"]);
  });

  it("runs ONBUILD triggers of a parent stage in its children only", () => {
    const df = lines("FROM alpine AS base", "ONBUILD COPY onbuild.txt /", "COPY base.txt /", "FROM base", "RUN true");
    expect(paths(df)).toEqual(["base.txt", "onbuild.txt"]);
    expect(paths(df, { target: "base" })).toEqual(["base.txt"]);
  });
});

describe("dockerfileContextPaths: sources", () => {
  it("treats heredoc sources as inline content", () => {
    const df = lines("FROM alpine", "COPY <<EOF /etc/motd", "hello", "EOF", "COPY <<A real.txt <<B /dst/", "a", "A", "b", "B");
    expect(paths(df)).toEqual(["real.txt"]);
  });

  it("reads JSON-form COPY and ADD", () => {
    const df = lines("FROM alpine", 'COPY ["my file.txt", "dir/", "/dst/"]', 'ADD ["a.tar.gz", "/opt/"]');
    expect(paths(df)).toEqual(["a.tar.gz", "dir", "my file.txt"]);
  });

  it("honours `# escape=` with backtick continuations", () => {
    const df = lines("# escape=`", "FROM mcr.microsoft.com/windows/servercore", "COPY app.ps1 `", "     lib\\ `", "     C:\\app\\");
    expect(paths(df)).toEqual(["app.ps1", "lib\\"]);
  });

  it("skips URL and Git sources of ADD but keeps local archives", () => {
    const df = lines(
      "FROM alpine",
      "ADD https://example.com/release.tar.gz /tmp/",
      "ADD http://example.com/file /tmp/",
      "ADD git@github.com:moby/buildkit.git /src/buildkit",
      "ADD https://github.com/moby/moby.git#v25.0.0 /src/moby",
      "ADD ssh://git@example.com/repo /src/repo",
      "ADD vendor.tar.gz /opt/",
    );
    expect(paths(df)).toEqual(["vendor.tar.gz"]);
  });

  it("reads RUN --mount=type=bind sources without from=, defaulting to the whole context", () => {
    expect(paths(lines("FROM alpine", "RUN --mount=type=bind,source=scripts,target=/s /s/run.sh"))).toEqual(["scripts"]);
    expect(paths(lines("FROM alpine", "RUN --mount=src=./a/b,dst=/x --mount=type=bind,target=/ctx make"))).toEqual(["."]);
    const others = lines(
      "FROM alpine",
      "RUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/tmp \\",
      "    --mount=type=secret,id=npmrc --mount=type=ssh make",
    );
    expect(paths(others)).toEqual([]);
  });

  it("keeps glob patterns as written (cleaned)", () => {
    expect(paths(lines("FROM alpine", "COPY *.txt ./src/**/*.go /dst/"))).toEqual(["*.txt", "src/**/*.go"]);
  });
});

describe("dockerfileContextPaths: variables", () => {
  const df = lines(
    "ARG APP=web",
    "ARG BASE=alpine",
    "FROM ${BASE}",
    "ARG APP",
    "ARG VERSION=1.0",
    "ARG UNDECLARED_IN_STAGE",
    "ENV CONF=conf/${APP}",
    "COPY apps/${APP}/ /app/",
    "COPY ${CONF}.yaml rel-${VERSION}.txt /etc/",
    "COPY ${UNDECLARED_IN_STAGE:-none} /",
  );

  it("expands global and stage ARGs and ENV with their defaults", () => {
    expect(paths(df)).toEqual(["apps/web", "conf/web.yaml", "none", "rel-1.0.txt"]);
  });

  it("lets --build-arg override declared ARGs only", () => {
    expect(paths(df, { buildArgs: { APP: "api", VERSION: "2.0", CONF: "ignored", UNDECLARED_IN_STAGE: "x" } })).toEqual([
      "apps/api",
      "conf/api.yaml",
      "rel-2.0.txt",
      "x",
    ]);
    expect(paths(lines("FROM alpine", "COPY ${NOT_DECLARED:-d}.txt /"), { buildArgs: { NOT_DECLARED: "x" } })).toEqual(["d.txt"]);
  });

  it("needs the stage to redeclare a global ARG", () => {
    expect(paths(lines("ARG DIR=src", "FROM alpine", "COPY ${DIR:-none} /"))).toEqual(["none"]);
  });

  it("provides the platform arguments", () => {
    const platformDf = lines("FROM alpine", "ARG TARGETARCH", "COPY bin/${TARGETARCH}/app /");
    expect(paths(platformDf)).toEqual(["bin/amd64/app"]);
    expect(paths(platformDf, { platform: "linux/arm64" })).toEqual(["bin/arm64/app"]);
  });

  it("inherits ENV and ARG values from a parent stage", () => {
    expect(paths(lines("FROM alpine AS base", "ENV D=data", "FROM base", "COPY $D /"))).toEqual(["data"]);
  });
});

describe("dockerfileContextPaths: normalisation", () => {
  it("clamps .. at the context root and strips leading /", () => {
    expect(paths(lines("FROM alpine", "COPY ../../etc/passwd /a/../b/./c //x/ /dst/"))).toEqual(["b/c", "etc/passwd", "x"]);
  });

  it("returns . alone when the whole context is needed", () => {
    expect(paths(lines("FROM alpine", "COPY . /app", "COPY a.txt /"))).toEqual(["."]);
    expect(paths(lines("FROM alpine", "COPY ./ /app"))).toEqual(["."]);
    expect(paths(lines("FROM alpine", "COPY /.. /app"))).toEqual(["."]);
  });

  it("sorts and de-duplicates", () => {
    expect(paths(lines("FROM alpine", "COPY b a ./a a/ /x/", "ADD c b /y/"))).toEqual(["a", "b", "c"]);
  });

  it("returns nothing when no instruction reads the context", () => {
    expect(paths(lines("FROM alpine", "RUN echo hi"))).toEqual([]);
  });
});

describe("dockerfileContextPaths: errors", () => {
  function reason(text: string, opts = {}): string {
    try {
      paths(text, opts);
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidError);
      expect(err).toBeInstanceOf(DockerfileError);
      return (err as DockerfileError).reason;
    }
    throw new Error("expected an error");
  }

  it.each([
    ["unknown --target", MULTI_STAGE, { target: "nope" }, 'target stage "nope" could not be found'],
    ["no FROM at all", "ARG A=1\n", {}, "dockerfile contains no stages to build"],
    ["an instruction before FROM", "COPY a /\nFROM alpine\n", {}, "no build stage in current context"],
    ["empty file", "", {}, "the Dockerfile cannot be empty"],
    ["only comments", "# hi\n", {}, "file with no instructions"],
    ["--from index out of range", lines("FROM alpine", "COPY --from=1 /a /b"), {}, "invalid stage index 1"],
    ["negative --from index", lines("FROM alpine", "COPY --from=-1 /a /b"), {}, "invalid stage index -1"],
    [
      "--from a later stage",
      lines("FROM alpine AS a", "COPY --from=b /x /", "FROM alpine AS b", "FROM a"),
      {},
      'cannot copy from stage "b", it needs to be defined before current stage "a"',
    ],
    ["--from itself", lines("FROM alpine AS a", "COPY --from=a /x /"), {}, "circular dependency detected on stage: a"],
    [
      "--from with a variable",
      lines("ARG S=a", "FROM alpine", "COPY --from=$S /x /"),
      {},
      "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
    ],
    ["blank base name", lines("ARG BASE", "FROM ${BASE}"), {}, "base name (${BASE}) should not be blank"],
    [
      "upper-case image",
      lines("FROM Alpine"),
      {},
      'failed to parse stage name "Alpine": invalid reference format: repository name (library/Alpine) must be lowercase',
    ],
    ["COPY of a URL", lines("FROM alpine", "COPY https://example.com/x /"), {}, "source can't be a URL for COPY"],
    ["COPY of a Git repo", lines("FROM alpine", "COPY git@github.com:a/b.git /"), {}, "source can't be a git ref for COPY"],
    ["a required variable", lines("FROM alpine", "COPY ${SRC:?} /"), {}, 'failed to process "${SRC:?}": SRC: is not allowed to be unset'],
    ["an unknown instruction", lines("FROM alpine", "COPPY a /"), {}, "unknown instruction: COPPY"],
    [
      "a missing destination",
      lines("FROM alpine", "COPY a"),
      {},
      "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
    ],
  ])("rejects %s", (_label, text, opts, expected) => {
    expect(reason(text, opts)).toBe(expected);
  });

  it("does not reject a malformed JSON-looking line: it is shell form", () => {
    // Shell form: the words are `["a",` and `"b"`, and expansion removes the quotes.
    expect(paths(lines("FROM alpine", 'COPY ["a", "b"'))).toEqual(["[a,"]);
  });

  it("points at the offending line and says how to fix it", () => {
    expect(() => paths(lines("FROM alpine", "COPPY a /"))).toThrow("Dockerfile line 2: unknown instruction: COPPY (did you mean COPY?)");
  });
});
