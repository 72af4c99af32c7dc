/**
 * Heredocs (`RUN <<EOF`, `COPY <<-'EOF' /dst`): recognising the `<<WORD` markers on an
 * instruction line, as BuildKit's parser does.
 */

import { DockerfileError } from "./errors.ts";
import { EMPTY_ENV, ShellLex } from "./shell-expand.ts";

/** A heredoc attached to an instruction. */
export interface Heredoc {
  /** Terminator word, quotes removed (`EOF` for `<<'EOF'`). */
  name: string;
  /** The N of `N<<EOF` (0 when absent). */
  fileDescriptor: number;
  /** False when any part of the terminator was quoted: the body is then taken literally. */
  expand: boolean;
  /** True for `<<-`: leading tabs are stripped from the body when it is used. */
  chomp: boolean;
  /** The body, lines exactly as written (tabs kept even for `<<-`), newlines included. */
  content: string;
}

// `\s` is Go's [\t\n\f\r ].
const HEREDOC = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

function wordsOf(text: string, rawQuotes: boolean): string[] {
  try {
    return new ShellLex({ rawQuotes, skipUnsetEnv: true }).processWords(text, EMPTY_ENV);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new DockerfileError(why, { hint: "close the quote in the heredoc marker", cause: err });
  }
}

/**
 * Reads a single word such as `<<EOF`, `<<-"EOF"` or `3<<EOF` as a heredoc marker. Returns
 * `undefined` if it is not one; throws if it is one with unbalanced quotes.
 */
export function parseHeredoc(word: string): Omit<Heredoc, "content"> | undefined {
  const m = HEREDOC.exec(word);
  if (m === null) return undefined;
  const rest = m[3] ?? "";
  if (rest === "") return undefined;
  const words = wordsOf(rest, false);
  if (words.length !== 1) return undefined;
  const raw = wordsOf(rest, true);
  if (raw.length !== words.length) {
    throw new DockerfileError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  }
  const name = words[0] ?? "";
  // Lexing with and without quote removal differs in quote count exactly when some part
  // of the word was quoted (escaped quotes survive both ways and cancel out).
  const expand = countQuotes(name) === countQuotes(raw[0] ?? "");
  // Go ignores the parse error of an out-of-range descriptor and uses 0.
  const fd = Number(m[1] || "0");
  return { name, expand, chomp: m[2] === "-", fileDescriptor: Number.isSafeInteger(fd) ? fd : 0 };
}

function countQuotes(s: string): number {
  let n = 0;
  for (const ch of s) if (ch === "'" || ch === '"') n++;
  return n;
}

/** The heredoc markers on an instruction line, in order (bodies not yet attached). */
export function heredocsFromLine(line: string): Omit<Heredoc, "content">[] {
  let words: string[];
  try {
    words = new ShellLex({ rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).processWords(line, EMPTY_ENV);
  } catch {
    // BuildKit ignores lexing errors here (the line may be ordinary shell).
    words = [];
  }
  const out: Omit<Heredoc, "content">[] = [];
  for (const word of words) {
    const h = parseHeredoc(word);
    if (h !== undefined) out.push(h);
  }
  return out;
}

/** Strips leading tabs from every line, as `<<-` asks. */
export function chompHeredocContent(content: string): string {
  // Not /^\t+/gm: JavaScript's multiline `^` also matches after `\r`, Go's does not.
  return content.replace(/(^|\n)\t+/g, "$1");
}
