/**
 * Turns parsed lines into typed instructions and build stages, with the argument and
 * flag checks of BuildKit's `instructions/parse.go`. Error reasons match BuildKit's text.
 */

import { BFlags } from "./bflags.ts";
import { DockerfileError, withLocation } from "./errors.ts";
import { chompHeredocContent, parseHeredoc } from "./heredoc.ts";
import type {
  AddCommand,
  ArgCommand,
  ArgDef,
  Command,
  CopyCommand,
  KeyValue,
  RunCommand,
  ShellDependentCmdLine,
  SourcesAndDest,
  Stage,
  StageHeader,
} from "./instruction-types.ts";
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

function atLeastOne(command: string): DockerfileError {
  return new DockerfileError(`${command} requires at least one argument`);
}

function exactlyOne(command: string): DockerfileError {
  return new DockerfileError(`${command} requires exactly one argument`);
}

function noDestination(command: string): DockerfileError {
  return new DockerfileError(`${command} requires at least two arguments, but only one was provided. Destination could not be determined`, {
    hint: `write ${command} <source>... <destination>`,
  });
}

function flagsOf(inst: Instruction, declare: (f: BFlags) => void = () => {}): BFlags {
  const f = new BFlags(inst.flags);
  declare(f);
  f.parse();
  return f;
}

function keyValues(inst: Instruction, command: string): KeyValue[] {
  flagsOf(inst);
  const a = inst.args;
  if (a.length === 0) throw atLeastOne(command);
  if (a.length % 3 !== 0) throw new DockerfileError(`Bad input to ${command}, too many arguments`);
  const out: KeyValue[] = [];
  for (let i = 0; i < a.length; i += 3) {
    const key = a[i] ?? "";
    if (key === "") throw new DockerfileError(`${command} names can not be blank`);
    out.push({ key, value: a[i + 1] ?? "", noDelim: a[i + 2] === "" });
  }
  return out;
}

function sourcesAndDest(inst: Instruction, command: string): SourcesAndDest {
  const destPath = inst.args[inst.args.length - 1] ?? "";
  if (safeHeredoc(destPath) !== undefined) {
    throw new DockerfileError(`${command} cannot accept a heredoc as a destination`, {
      hint: "heredocs can only be sources; give a path as the last argument",
    });
  }
  const out: SourcesAndDest = { sourcePaths: [], sourceContents: [], destPath };
  for (const src of inst.args.slice(0, -1)) {
    const h = safeHeredoc(src);
    if (h === undefined) {
      out.sourcePaths.push(src);
      continue;
    }
    const body = inst.heredocs.findLast((d) => d.name === h.name)?.content ?? "";
    out.sourceContents.push({ path: h.name, data: h.chomp ? chompHeredocContent(body) : body, expand: h.expand });
  }
  return out;
}

// BuildKit's MustParseHeredoc: a malformed marker simply is not a heredoc.
function safeHeredoc(word: string): ReturnType<typeof parseHeredoc> {
  try {
    return parseHeredoc(word);
  } catch {
    return undefined;
  }
}

function cmdLine(inst: Instruction): ShellDependentCmdLine {
  const files = inst.heredocs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp }));
  let line: string[];
  if (inst.args.length === 0) line = [];
  else if (inst.json) line = [...inst.args];
  else line = [inst.args.join(" ")];
  return { cmdLine: line, prependShell: !inst.json, files };
}

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

function parseHealthcheck(inst: Instruction): Command {
  if (inst.args.length === 0) throw atLeastOne("HEALTHCHECK");
  const type = (inst.args[0] ?? "").toUpperCase();
  const rest = inst.args.slice(1);
  if (type === "NONE") {
    if (rest.length !== 0) throw new DockerfileError("HEALTHCHECK NONE takes no arguments");
    return { kind: "healthcheck", instruction: inst, test: ["NONE"] };
  }
  const f = flagsOf(inst, (f) => {
    for (const name of ["interval", "timeout", "start-period", "start-interval", "retries"]) f.addString(name);
  });
  if (type !== "CMD") throw new DockerfileError(`Unknown type ${goQuote(type)} in HEALTHCHECK (try CMD)`);
  const cmd = inst.json ? rest : rest.length === 0 ? [] : [rest.join(" ")];
  if (cmd.length === 0) throw new DockerfileError("Missing command after HEALTHCHECK CMD");
  for (const name of ["interval", "timeout", "start-period", "start-interval"]) checkInterval(name, f.string(name));
  const retries = f.string("retries");
  if (retries !== "") {
    if (!/^[+-]?[0-9]+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31) {
      throw new DockerfileError(`strconv.ParseInt: parsing ${goQuote(retries)}: invalid syntax`);
    }
    if (Number(retries) < 0) throw new DockerfileError(`--retries cannot be negative (${Number(retries)})`);
  }
  return { kind: "healthcheck", instruction: inst, test: [inst.json ? "CMD" : "CMD-SHELL", ...cmd] };
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };

/** Checks a Go duration (`1m30s`) and BuildKit's 1ms minimum for non-zero intervals. */
function checkInterval(name: string, value: string): void {
  if (value === "") return;
  const body = value.replace(/^[+-]/, "");
  let ms = 0;
  const ok =
    body === "0" ||
    (body !== "" &&
      body.replace(/([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)/gy, (_m, num: string, unit: string) => {
        if (num === "" || num === ".") return "x";
        ms += Number(num) * (DURATION_UNITS[unit] ?? 0);
        return "";
      }) === "");
  if (!ok) throw new DockerfileError(`time: invalid duration ${goQuote(value)}`, { hint: "use a duration such as 30s" });
  if (value.startsWith("-")) ms = -ms;
  if (ms !== 0 && ms < 1) throw new DockerfileError(`Interval ${goQuote(name)} cannot be less than 1ms`);
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

function single(inst: Instruction, command: string, parseFlags = true): string {
  if (inst.args.length !== 1) throw exactlyOne(command);
  if (parseFlags) flagsOf(inst);
  return inst.args[0] ?? "";
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
