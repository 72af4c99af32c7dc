/**
 * Turns parsed lines into typed instructions and build stages, with the argument and
 * flag checks of BuildKit's `instructions/parse.go`. Error reasons match BuildKit's text.
 * The argument shapes several instructions share are in instruction-args.ts, HEALTHCHECK
 * in healthcheck.ts.
 */

import { DockerfileError, withLocation } from "./errors.ts";
import { parseHealthcheck } from "./healthcheck.ts";
import { atLeastOne, cmdLine, flagsOf, keyValues, noDestination, single, sourcesAndDest } from "./instruction-args.ts";
import type { AddCommand, ArgCommand, ArgDef, Command, CopyCommand, RunCommand, Stage, StageHeader } from "./instruction-types.ts";
import type { DockerfileAst, Instruction } from "./parser.ts";
import { mountSources } from "./run-mount.ts";
import { goQuote, trimSpace } from "./text.ts";

// The typed-instruction shapes live in their own module to keep this one short.
export type * from "./instruction-types.ts";

const INSTRUCTIONS = [
  "add",
  "arg",
  "cmd",
  "copy",
  "entrypoint",
  "env",
  "expose",
  "from",
  "healthcheck",
  "label",
  "maintainer",
  "onbuild",
  "run",
  "shell",
  "stopsignal",
  "user",
  "volume",
  "workdir",
];

function parseCopy(inst: Instruction): CopyCommand {
  if (inst.args.length < 2) throw noDestination("COPY");
  const f = flagsOf(inst, (f) => {
    f.addString("chown");
    f.addString("from");
    f.addString("chmod");
    f.addBool("link");
    f.addBool("parents");
    f.addStrings("exclude");
  });
  return {
    kind: "copy",
    instruction: inst,
    ...sourcesAndDest(inst, "COPY"),
    from: f.string("from"),
    chown: f.string("chown"),
    chmod: f.string("chmod"),
    link: f.bool("link"),
    parents: f.bool("parents"),
    exclude: f.strings("exclude"),
  };
}

function parseAdd(inst: Instruction): AddCommand {
  if (inst.args.length < 2) throw noDestination("ADD");
  const f = flagsOf(inst, (f) => {
    f.addString("chown");
    f.addString("chmod");
    f.addBool("link");
    f.addBool("keep-git-dir");
    f.addString("checksum");
    f.addBool("unpack");
    f.addStrings("exclude");
  });
  return {
    kind: "add",
    instruction: inst,
    ...sourcesAndDest(inst, "ADD"),
    chown: f.string("chown"),
    chmod: f.string("chmod"),
    link: f.bool("link"),
    keepGitDir: f.bool("keep-git-dir"),
    checksum: f.string("checksum"),
    unpack: f.bool("unpack"),
    exclude: f.strings("exclude"),
  };
}

function parseRun(inst: Instruction): RunCommand {
  const f = flagsOf(inst, (f) => {
    f.addStrings("mount");
    f.addString("network", "default");
    f.addString("security", "sandbox");
    f.addStrings("device");
  });
  const mounts = f.strings("mount");
  return {
    kind: "run",
    instruction: inst,
    ...cmdLine(inst),
    mounts,
    mountFroms: mountSources(mounts),
    flagsUsed: f.used(),
  };
}

function parseFrom(inst: Instruction): StageHeader {
  const a = inst.args;
  let name = "";
  if (a.length === 3 && (a[1] ?? "").toLowerCase() === "as") {
    name = (a[2] ?? "").toLowerCase();
    if (!/^[a-z][a-z0-9-_.]*$/.test(name)) {
      throw new DockerfileError(`invalid name for build stage: ${goQuote(a[2] ?? "")}, name can't start with a number or contain symbols`, {
        hint: "use lower-case letters, digits, '-', '_' and '.', starting with a letter",
      });
    }
  } else if (a.length !== 1) {
    throw new DockerfileError("FROM requires either one or three arguments", { hint: "write FROM <image> [AS <name>]" });
  }
  const f = flagsOf(inst, (f) => f.addString("platform"));
  return { kind: "from", instruction: inst, baseName: a[0] ?? "", name, platform: f.string("platform") };
}

function parseOnbuild(inst: Instruction): Command {
  if (inst.args.length === 0) throw atLeastOne("ONBUILD");
  flagsOf(inst);
  const trigger = trimSpace(inst.args[0] ?? "").toUpperCase();
  if (trigger === "ONBUILD") throw new DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (trigger === "MAINTAINER" || trigger === "FROM") {
    throw new DockerfileError(`${trigger} isn't allowed as an ONBUILD trigger`);
  }
  let expression = inst.original.replace(/^[\t\n\f\r ]*onbuild[\t\n\f\r ]*/i, "");
  for (const h of inst.heredocs) expression += `\n${h.content}${h.name}`;
  return { kind: "onbuild", instruction: inst, expression };
}

function parseArg(inst: Instruction): ArgCommand {
  if (inst.args.length === 0) throw atLeastOne("ARG");
  const args: ArgDef[] = inst.args.map((arg) => {
    const eq = arg.indexOf("=");
    if (eq < 0) return { key: arg, value: undefined };
    if (eq === 0) throw new DockerfileError("ARG names can not be blank");
    return { key: arg.slice(0, eq), value: arg.slice(eq + 1) };
  });
  return { kind: "arg", instruction: inst, args };
}

function unknown(inst: Instruction): DockerfileError {
  const guess = INSTRUCTIONS.find((name) => editDistance(name, inst.command) <= 2);
  const hint = guess === undefined ? "check the spelling of the instruction" : `did you mean ${guess.toUpperCase()}?`;
  return new DockerfileError(`unknown instruction: ${inst.keyword}`, { hint });
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * Validates one parsed line and returns its typed form. Throws a `DockerfileError` whose
 * `reason` is BuildKit's message (e.g. "COPY requires at least two arguments, ...").
 */
export function parseInstruction(inst: Instruction): StageHeader | Command {
  const k = { instruction: inst };
  switch (inst.command) {
    case "env":
      return { ...k, kind: "env", env: keyValues(inst, "ENV") };
    case "label":
      return { ...k, kind: "label", labels: keyValues(inst, "LABEL") };
    case "maintainer":
      return { ...k, kind: "maintainer", maintainer: single(inst, "MAINTAINER") };
    case "add":
      return parseAdd(inst);
    case "copy":
      return parseCopy(inst);
    case "from":
      return parseFrom(inst);
    case "onbuild":
      return parseOnbuild(inst);
    case "workdir":
      return { ...k, kind: "workdir", path: single(inst, "WORKDIR") };
    case "run":
      return parseRun(inst);
    case "cmd":
      flagsOf(inst);
      return { ...k, kind: "cmd", ...cmdLine(inst) };
    case "entrypoint":
      flagsOf(inst);
      return { ...k, kind: "entrypoint", ...cmdLine(inst) };
    case "healthcheck":
      return parseHealthcheck(inst);
    case "expose":
      if (inst.args.length === 0) throw atLeastOne("EXPOSE");
      flagsOf(inst);
      return { ...k, kind: "expose", ports: [...inst.args].sort() };
    case "user":
      return { ...k, kind: "user", user: single(inst, "USER") };
    case "volume":
      return parseVolume(inst);
    case "stopsignal":
      return { ...k, kind: "stopsignal", signal: single(inst, "STOPSIGNAL", false) };
    case "arg":
      return parseArg(inst);
    case "shell":
      return parseShell(inst);
    default:
      throw unknown(inst);
  }
}

function parseVolume(inst: Instruction): Command {
  if (inst.args.length === 0) throw atLeastOne("VOLUME");
  flagsOf(inst);
  const volumes = inst.args.map((v) => {
    const t = trimSpace(v);
    if (t === "") throw new DockerfileError("VOLUME specified can not be an empty string");
    return t;
  });
  return { kind: "volume", instruction: inst, volumes };
}

function parseShell(inst: Instruction): Command {
  flagsOf(inst);
  const shell = cmdLine(inst).cmdLine;
  if (shell.length === 0) throw atLeastOne("SHELL");
  if (!inst.json) {
    throw new DockerfileError("SHELL requires the arguments to be in JSON form", {
      hint: 'write SHELL ["/bin/sh", "-c"]',
    });
  }
  return { kind: "shell", instruction: inst, shell };
}

/** The stages of a Dockerfile, and the ARGs declared before the first FROM. */
export interface Stages {
  /** ARG instructions before the first FROM (global build arguments). */
  metaArgs: ArgCommand[];
  /** The build stages in order. */
  stages: Stage[];
}

/** Parses every instruction and groups them into stages, as BuildKit's `instructions.Parse`. */
export function parseStages(ast: DockerfileAst): Stages {
  const metaArgs: ArgCommand[] = [];
  const stages: Stage[] = [];
  for (const inst of ast.instructions) {
    let cmd: StageHeader | Command;
    try {
      cmd = parseInstruction(inst);
    } catch (err) {
      throw withLocation(err, inst.startLine, inst.endLine);
    }
    if (cmd.kind === "from") {
      stages.push({ ...cmd, commands: [] });
      continue;
    }
    const current = stages[stages.length - 1];
    if (current !== undefined) {
      current.commands.push(cmd);
    } else if (cmd.kind === "arg") {
      metaArgs.push(cmd);
    } else {
      throw new DockerfileError("no build stage in current context", {
        startLine: inst.startLine,
        endLine: inst.endLine,
        hint: `only ARG may come before the first FROM; move ${inst.keyword.toUpperCase()} after a FROM`,
      });
    }
  }
  return { metaArgs, stages };
}
