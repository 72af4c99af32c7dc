/**
 * Per-instruction argument parsing at the parser level (BuildKit's `line_parsers.go`):
 * how the text after an instruction keyword becomes the list of argument nodes.
 */

import { DockerfileError } from "./errors.ts";
import { NOT_STRING_ARRAY, parseJsonArgs } from "./json-args.ts";
import { parseWords } from "./shell-words.ts";
import { TOKEN_WHITESPACE } from "./split-command.ts";
import { fromByteString, goQuote, goSplit, isGoSpace, toByteString } from "./text.ts";

/** The argument nodes of one instruction, before line numbers are attached. */
export interface ParsedArgs {
  /** Argument node values in order (BuildKit's `Next` chain). */
  args: string[];
  /** True when the arguments were written in JSON (exec) form. */
  json: boolean;
  /** ONBUILD's trigger instruction (its `args` then stay empty). */
  sub?: SubInstruction;
}

/** An instruction parsed from one logical line, without location. */
export interface SubInstruction extends ParsedArgs {
  /** Keyword as written. */
  keyword: string;
  /** Leading `--flags`. */
  flags: string[];
  /** The logical line it came from. */
  original: string;
}

/** Parses the line of a nested instruction (ONBUILD's trigger); set by the parser. */
export type LineParser = (line: string) => SubInstruction;

const NONE: ParsedArgs = { args: [], json: false };

function whitespaceDelimited(rest: string): ParsedArgs {
  if (rest === "") return NONE;
  return { args: goSplit(rest, TOKEN_WHITESPACE, -1), json: false };
}

function maybeJson(rest: string): ParsedArgs {
  if (rest === "") return NONE;
  const parsed = parseJsonArgs(rest);
  if (parsed.kind === "json") return { args: parsed.values, json: true };
  if (parsed.kind === "not-string-array") throw notStringArray();
  return { args: [rest], json: false };
}

function maybeJsonToList(rest: string): ParsedArgs {
  const parsed = parseJsonArgs(rest);
  if (parsed.kind === "json") return { args: parsed.values, json: true };
  if (parsed.kind === "not-string-array") throw notStringArray();
  return whitespaceDelimited(rest);
}

function notStringArray(): DockerfileError {
  return new DockerfileError(NOT_STRING_ARRAY, {
    hint: 'write every element as a quoted string, e.g. ["echo", "hi"], or drop the brackets for the shell form',
  });
}

/** ENV and LABEL: `key=value ...`, or the legacy `key value` form (one pair, value verbatim). */
function nameVal(rest: string, keyword: string, escapeToken: string): ParsedArgs {
  const words = parseWords(rest, escapeToken);
  if (words.length === 0) return NONE;
  if (!(words[0] ?? "").includes("=")) {
    const parts = goSplit(rest, TOKEN_WHITESPACE, 2);
    if (parts.length < 2) {
      throw new DockerfileError(`${keyword} must have two arguments`, {
        hint: `write ${keyword} ${parts[0] ?? "name"}=value`,
      });
    }
    return { args: [parts[0] ?? "", parts[1] ?? "", ""], json: false };
  }
  const args: string[] = [];
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq < 0) {
      throw new DockerfileError(`Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`, {
        hint: "quote values that contain spaces",
      });
    }
    args.push(word.slice(0, eq), word.slice(eq + 1), "=");
  }
  return { args, json: false };
}

/** HEALTHCHECK: a type word (`CMD`, `NONE`) followed by a command in either form. */
function healthConfig(rest: string): ParsedArgs {
  // BuildKit scans bytes here, so it runs over the UTF-8 byte form of the text.
  const bytes = toByteString(rest);
  let sep = 0;
  while (sep < bytes.length && !isGoSpace(bytes[sep] ?? "")) sep++;
  let next = sep;
  while (next < bytes.length && isGoSpace(bytes[next] ?? "")) next++;
  if (sep === 0) return NONE;
  const cmd = maybeJson(fromByteString(bytes.slice(next)));
  return { args: [fromByteString(bytes.slice(0, sep)), ...cmd.args], json: cmd.json };
}

/**
 * Parses the arguments of `keyword` (any case). Unknown instructions parse to a single
 * empty argument, as in BuildKit, and are rejected later, by the instruction parser.
 */
export function parseArgs(keyword: string, rest: string, escapeToken: string, parseLine: LineParser): ParsedArgs {
  switch (keyword.toLowerCase()) {
    case "add":
    case "copy":
    case "volume":
      return maybeJsonToList(rest);
    case "cmd":
    case "entrypoint":
    case "run":
    case "shell":
      return maybeJson(rest);
    case "arg": {
      const words = parseWords(rest, escapeToken);
      return { args: words, json: false };
    }
    case "env":
      return nameVal(rest, "ENV", escapeToken);
    case "label":
      return nameVal(rest, "LABEL", escapeToken);
    case "expose":
    case "from":
      return whitespaceDelimited(rest);
    case "healthcheck":
      return healthConfig(rest);
    case "maintainer":
    case "stopsignal":
    case "user":
    case "workdir":
      return rest === "" ? NONE : { args: [rest], json: false };
    case "onbuild":
      return rest === "" ? NONE : { args: [], json: false, sub: parseLine(rest) };
    default:
      return { args: [""], json: false };
  }
}
