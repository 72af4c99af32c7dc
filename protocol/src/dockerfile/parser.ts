/**
 * The Dockerfile parser: text to a flat list of instructions, with BuildKit's exact rules
 * for directives, escapes, line continuations, comments and heredocs (a port of
 * `frontend/dockerfile/parser/parser.go`). Pure: no Node-only APIs.
 */

import { DirectiveParser } from "./directives.ts";
import { DockerfileError, withLocation } from "./errors.ts";
import { type Heredoc, heredocsFromLine } from "./heredoc.ts";
import { parseArgs, type SubInstruction } from "./line-parsers.ts";
import { splitCommand } from "./split-command.ts";
import { trimLeftSpace, utf8Length } from "./text.ts";

// Heredoc is part of the AST, so it is exported alongside it.
export type { Heredoc } from "./heredoc.ts";

/** One instruction of a Dockerfile, as BuildKit's parser sees it. */
export interface Instruction {
  /** Lower-cased keyword (`from`, `copy`, `run`, ... or an unknown word). */
  command: string;
  /** The keyword exactly as written. */
  keyword: string;
  /** Leading `--name=value` flags, quotes removed. */
  flags: string[];
  /**
   * Argument values. ENV and LABEL give `key, value, separator` triples (separator `=`,
   * or `""` for the legacy `ENV key value` form); ONBUILD gives the trigger's keyword
   * followed by the trigger's arguments.
   */
  args: string[];
  /** True when the arguments were written as a JSON array (exec form). */
  json: boolean;
  /** The logical line: continuation lines joined, escape characters still in place. */
  original: string;
  /** Heredocs whose bodies follow this instruction. */
  heredocs: Heredoc[];
  /** 1-based first line. */
  startLine: number;
  /** 1-based last line, including continuation lines and heredoc bodies. */
  endLine: number;
  /** For ONBUILD: the trigger instruction (same line numbers as the ONBUILD). */
  sub?: Instruction;
}

/** A non-fatal problem found while parsing. */
export interface ParseWarning {
  /** What was found, as BuildKit words it. */
  message: string;
  /** 1-based line at which the instruction ends. */
  line: number;
}

/** A parsed Dockerfile. */
export interface DockerfileAst {
  /** The instructions in order. */
  instructions: Instruction[];
  /** The escape character in effect (`\` unless `# escape=` says otherwise). */
  escapeToken: string;
  /** Non-fatal findings, e.g. empty lines inside a continued instruction. */
  warnings: ParseWarning[];
  /** 1-based line of the first instruction. */
  startLine: number;
  /** 1-based line where the last instruction ends. */
  endLine: number;
}

/** BuildKit reads the file with Go's bufio.Scanner, which caps a line at 64 KiB. */
const MAX_LINE_BYTES = 64 * 1024;

const HEREDOC_COMMANDS = new Set(["add", "copy", "run"]);

/** Hands out the file's lines (newline kept) until a line is longer than BuildKit accepts. */
class LineSource {
  readonly #lines: string[];
  #index = 0;
  /** Set once the next line is too long: BuildKit's scanner stops there with an error. */
  tooLong = false;

  constructor(text: string) {
    const lines = text.split(/(?<=\n)/);
    if (lines[lines.length - 1] === "") lines.pop();
    this.#lines = lines;
  }

  next(): string | undefined {
    const line = this.#lines[this.#index];
    if (line === undefined || this.tooLong) return undefined;
    const bytes = utf8Length(line);
    // A final line without newline must leave one byte free for the scanner to see EOF.
    if (bytes > MAX_LINE_BYTES || (bytes === MAX_LINE_BYTES && !line.endsWith("\n"))) {
      this.tooLong = true;
      return undefined;
    }
    this.#index++;
    return line;
  }
}

class Directives {
  readonly parser = new DirectiveParser();
  escapeToken = "\\";
  continuation = continuationRegExp("\\");

  /** Feeds a line to the directive parser; applies `# escape=`. */
  offer(line: string): void {
    const d = this.parser.parseLine(line);
    if (d?.name !== "escape") return;
    if (d.value !== "`" && d.value !== "\\") {
      throw new DockerfileError(`invalid escape token '${d.value}' does not match \` or \\`, {
        hint: "use # escape=\\ or # escape=`",
      });
    }
    this.escapeToken = d.value;
    this.continuation = continuationRegExp(d.value);
  }
}

// The escape char at the end of a line continues it, unless the escape char is itself
// escaped (only detected for one preceding char, like BuildKit's regexp).
function continuationRegExp(esc: string): RegExp {
  const e = esc === "\\" ? "\\\\" : "`";
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, "");
}

function isComment(line: string): boolean {
  return trimLeftSpace(line).startsWith("#");
}

function processLine(d: Directives, raw: string, stripLeft: boolean): string {
  let token = trimNewline(raw);
  if (stripLeft) token = trimLeftSpace(token);
  d.offer(token);
  return isComment(token) ? "" : token;
}

function trimContinuation(line: string, d: Directives): [string, boolean] {
  if (!d.continuation.test(line)) return [line, true];
  return [line.replace(d.continuation, "$1"), false];
}

/** Parses one logical line into an instruction (without location). */
export function parseLine(line: string, escapeToken = "\\"): SubInstruction {
  const { keyword, flags, rest } = splitCommand(line);
  const parsed = parseArgs(keyword, rest, escapeToken, (sub) => parseLine(sub, escapeToken));
  return { keyword, flags, original: line, ...parsed };
}

function toInstruction(p: SubInstruction, startLine: number, endLine: number): Instruction {
  const inst: Instruction = {
    command: p.keyword.toLowerCase(),
    keyword: p.keyword,
    flags: p.flags,
    args: p.args,
    json: p.json,
    original: p.original,
    heredocs: [],
    startLine,
    endLine,
  };
  if (p.sub !== undefined) {
    inst.sub = toInstruction(p.sub, startLine, endLine);
    inst.args = [p.sub.keyword, ...inst.sub.args];
  }
  return inst;
}

function canContainHeredoc(inst: Instruction): boolean {
  const target = inst.command === "onbuild" && inst.sub !== undefined ? inst.sub : inst;
  return HEREDOC_COMMANDS.has(target.command) && !target.json;
}

/**
 * Parses Dockerfile text into instructions exactly as BuildKit's parser does. Throws a
 * `DockerfileError` (an `InvalidError`) for what BuildKit rejects at this stage: a file
 * without instructions, a bad `# escape=`, a repeated directive, an unterminated heredoc,
 * JSON arrays holding non-strings, `ENV`/`LABEL` syntax errors and over-long lines.
 */
export function parseDockerfile(text: string): DockerfileAst {
  const d = new Directives();
  const src = new LineSource(text);
  const instructions: Instruction[] = [];
  const warnings: ParseWarning[] = [];
  let currentLine = 0;
  for (let raw = src.next(); raw !== undefined; raw = src.next()) {
    if (currentLine === 0 && raw.startsWith("\ufeff")) raw = raw.slice(1);
    let first: string;
    try {
      first = processLine(d, raw, true);
    } catch (err) {
      throw withLocation(err, currentLine + 1, currentLine + 1);
    }
    currentLine++;
    const startLine = currentLine;
    let [line, isEnd] = trimContinuation(first, d);
    if (isEnd && line === "") continue;

    let hasEmptyContinuation = false;
    while (!isEnd) {
      const more = src.next();
      if (more === undefined) break;
      let part: string;
      try {
        part = processLine(d, more, false);
      } catch (err) {
        throw withLocation(err, currentLine + 1, currentLine + 1);
      }
      currentLine++;
      // Comment lines inside a continued instruction are dropped; blank ones only warn.
      if (isComment(more)) continue;
      if (trimLeftSpace(trimNewline(part)) === "") {
        hasEmptyContinuation = true;
        continue;
      }
      [part, isEnd] = trimContinuation(part, d);
      line += part;
    }
    if (hasEmptyContinuation) warnings.push({ message: `Empty continuation line found in: ${line}`, line: currentLine });

    let inst: Instruction;
    try {
      inst = toInstruction(parseLine(line, d.escapeToken), startLine, currentLine);
    } catch (err) {
      throw withLocation(err, startLine, currentLine);
    }
    if (canContainHeredoc(inst) && line.includes("<<")) {
      let markers: ReturnType<typeof heredocsFromLine>;
      try {
        markers = heredocsFromLine(line);
      } catch (err) {
        throw withLocation(err, startLine, currentLine);
      }
      for (const marker of markers) {
        let content = "";
        let terminated = false;
        for (let body = src.next(); body !== undefined; body = src.next()) {
          currentLine++;
          let candidate = trimNewline(body);
          if (marker.chomp) candidate = candidate.replace(/^\t+/, "");
          if (candidate === marker.name) {
            terminated = true;
            break;
          }
          content += body;
        }
        if (!terminated) {
          throw new DockerfileError("unterminated heredoc", {
            startLine,
            endLine: currentLine,
            hint: `end the heredoc with a line containing only ${marker.name}`,
          });
        }
        inst.heredocs.push({ ...marker, content });
      }
      inst.endLine = currentLine;
      if (inst.sub !== undefined) inst.sub.endLine = currentLine;
    }
    instructions.push(inst);
  }

  const firstInst = instructions[0];
  const lastInst = instructions[instructions.length - 1];
  if (firstInst === undefined || lastInst === undefined) {
    throw new DockerfileError("file with no instructions", {
      hint: "a Dockerfile needs at least a FROM instruction",
    });
  }
  if (src.tooLong) {
    throw new DockerfileError(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES - 1}`, {
      startLine: currentLine + 1,
      hint: "split the line with line continuations",
    });
  }
  return {
    instructions,
    escapeToken: d.escapeToken,
    warnings,
    startLine: firstInst.startLine,
    endLine: lastInst.endLine,
  };
}
