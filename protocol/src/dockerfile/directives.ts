/**
 * Parser directives (`# syntax=`, `# escape=`, `# check=`): comment lines at the very top
 * of a Dockerfile that configure the parser itself. Ported from BuildKit's
 * `parser/directives.go`, including its quirks: the block ends at the first line that is
 * not a known directive, and names are case-insensitive.
 */

import { DockerfileError } from "./errors.ts";
import { trimLeftSpace } from "./text.ts";

/** One parser directive found at the top of a Dockerfile. */
export interface Directive {
  /** Lower-cased name: `syntax`, `escape` or `check`. */
  name: string;
  /** The value as written, trimmed. */
  value: string;
  /** 1-based line number. */
  line: number;
}

const KNOWN = new Set(["syntax", "escape", "check"]);
// Go's `\s` is [\t\n\f\r ] and its `.` is anything but \n.
const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/;

/** Reads directives line by line until the first line that is not one. */
export class DirectiveParser {
  #line: number;
  readonly #comment: string;
  readonly #seen = new Set<string>();
  #done = false;

  /** `comment` is the prefix that introduces a directive (`#`, or `//` for DetectSyntax). */
  constructor(options: { comment?: string; line?: number } = {}) {
    this.#comment = options.comment ?? "#";
    this.#line = options.line ?? 0;
  }

  /** Parses one line; returns the directive it holds, or `undefined` (which ends the block). */
  parseLine(line: string): Directive | undefined {
    this.#line++;
    if (this.#done) return undefined;
    if (!line.startsWith(this.#comment)) {
      this.#done = true;
      return undefined;
    }
    const match = DIRECTIVE.exec(trimLeftSpace(line.slice(this.#comment.length)));
    const name = match?.[1]?.toLowerCase();
    if (match === null || name === undefined || !KNOWN.has(name)) {
      this.#done = true;
      return undefined;
    }
    if (this.#seen.has(name)) {
      throw new DockerfileError(`only one ${name} parser directive can be used`, {
        hint: `remove the duplicate "# ${name}=" line`,
      });
    }
    this.#seen.add(name);
    return { name, value: match[2] ?? "", line: this.#line };
  }

  /** Parses the directive block at the top of `text`; throws on a repeated directive. */
  parseAll(text: string): Directive[] {
    const { directives, error } = this.collect(text);
    if (error !== undefined) throw error;
    return directives;
  }

  /** Like {@link parseAll}, but returns the directives read before an error alongside it. */
  collect(text: string): { directives: Directive[]; error?: DockerfileError } {
    const directives: Directive[] = [];
    for (const line of scanTextLines(text)) {
      if (this.#done) break;
      try {
        const d = this.parseLine(line);
        if (d !== undefined) directives.push(d);
      } catch (err) {
        if (err instanceof DockerfileError) return { directives, error: err };
        throw err;
      }
    }
    return { directives };
  }
}

/** Splits text into lines like Go's `bufio.ScanLines` (drops `\n`, a final `\r`, a final empty line). */
function scanTextLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

/** A directive found by {@link detectSyntax} or {@link parseDirective}. */
export interface DetectedDirective {
  /** The value up to the first space (e.g. the frontend image of `# syntax=`). */
  value: string;
  /** The whole value, including anything after the first space. */
  cmdline: string;
  /** 1-based line of the directive (0 for the JSON form without a shebang). */
  line: number;
}

/**
 * Finds the `syntax` directive as BuildKit does: `# syntax=`, then `// syntax=`, then a
 * JSON document `{"syntax": "..."}`; a leading `#!` shebang line and a BOM are skipped.
 */
export function detectSyntax(text: string): DetectedDirective | undefined {
  return findDirective("syntax", text, true);
}

/** Finds a `# key=value` directive (only the `#` form; e.g. `check`). */
export function parseDirective(key: string, text: string): DetectedDirective | undefined {
  return findDirective(key, text, false);
}

function findDirective(key: string, text: string, anyFormat: boolean): DetectedDirective | undefined {
  let dt = text.startsWith("\ufeff") ? text.slice(1) : text;
  const nl = dt.indexOf("\n");
  const first = nl < 0 ? dt : dt.slice(0, nl);
  let line = 0;
  if (first.startsWith("#!")) {
    dt = nl < 0 ? "" : dt.slice(nl + 1);
    line = 1;
  }
  const found = fromParser(key, dt, new DirectiveParser({ line }));
  if (found !== undefined || !anyFormat) return found;
  const slashes = fromParser(key, dt, new DirectiveParser({ line, comment: "//" }));
  if (slashes !== undefined) return slashes;
  let json: unknown;
  try {
    json = JSON.parse(dt);
  } catch {
    return undefined;
  }
  if (json !== null && typeof json === "object" && !Array.isArray(json)) {
    const v = (json as Record<string, unknown>)[key];
    if (typeof v === "string") return { value: v, cmdline: v, line };
  }
  return undefined;
}

function fromParser(key: string, text: string, parser: DirectiveParser): DetectedDirective | undefined {
  // BuildKit ignores a repeated-directive error here and uses what it read before it.
  for (const d of parser.collect(text).directives) {
    if (d.name === key) {
      const sp = d.value.indexOf(" ");
      return { value: sp < 0 ? d.value : d.value.slice(0, sp), cmdline: d.value, line: d.line };
    }
  }
  return undefined;
}
