/**
 * Argument shapes shared by the instruction parsers, as BuildKit's `instructions/parse.go`
 * checks them: argument counts, `--flags`, key=value pairs, sources and destination, and
 * command lines. Error reasons match BuildKit's text.
 */

import { BFlags } from "./bflags.ts";
import { DockerfileError } from "./errors.ts";
import { chompHeredocContent, parseHeredoc } from "./heredoc.ts";
import type { KeyValue, ShellDependentCmdLine, SourcesAndDest } from "./instruction-types.ts";
import type { Instruction } from "./parser.ts";

/** BuildKit's errAtLeastOneArgument. */
export function atLeastOne(command: string): DockerfileError {
  return new DockerfileError(`${command} requires at least one argument`);
}

/** BuildKit's errExactlyOneArgument. */
export function exactlyOne(command: string): DockerfileError {
  return new DockerfileError(`${command} requires exactly one argument`);
}

/** BuildKit's errNoDestinationArgument, with a hint. */
export function noDestination(command: string): DockerfileError {
  return new DockerfileError(`${command} requires at least two arguments, but only one was provided. Destination could not be determined`, {
    hint: `write ${command} <source>... <destination>`,
  });
}

/** Parses an instruction's `--flags`; `declare` lists the ones it accepts, any other is an error. */
export function flagsOf(inst: Instruction, declare: (f: BFlags) => void = () => {}): BFlags {
  const f = new BFlags(inst.flags);
  declare(f);
  f.parse();
  return f;
}

/** ENV/LABEL arguments: the parser's key, value, delimiter triples (BuildKit's parseKvps). */
export function keyValues(inst: Instruction, command: string): KeyValue[] {
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

/** COPY/ADD arguments: source paths and heredoc sources, then the destination (BuildKit's parseSourcesAndDest). */
export function sourcesAndDest(inst: Instruction, command: string): SourcesAndDest {
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

/** RUN/CMD/ENTRYPOINT arguments: JSON form as given, shell form as one line, with heredoc files. */
export function cmdLine(inst: Instruction): ShellDependentCmdLine {
  const files = inst.heredocs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp }));
  let line: string[];
  if (inst.args.length === 0) line = [];
  else if (inst.json) line = [...inst.args];
  else line = [inst.args.join(" ")];
  return { cmdLine: line, prependShell: !inst.json, files };
}

/** The one argument of WORKDIR, USER and the like; STOPSIGNAL does not parse flags. */
export function single(inst: Instruction, command: string, parseFlags = true): string {
  if (inst.args.length !== 1) throw exactlyOne(command);
  if (parseFlags) flagsOf(inst);
  return inst.args[0] ?? "";
}
