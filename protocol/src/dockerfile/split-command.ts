/**
 * Splitting an instruction line into keyword, `--flags` and the rest, as BuildKit's
 * `splitCommand` / `extractBuilderFlags` do.
 */

import { fromByteString, goSplit, isGoSpace, toByteString, trimSpace } from "./text.ts";

/** An instruction line split into its parts. */
export interface SplitCommand {
  /** The keyword as written (`COPY`, `run`, ...). */
  keyword: string;
  /** Leading `--name[=value]` flags, quotes and escapes removed. */
  flags: string[];
  /** Everything after the flags, trimmed. */
  rest: string;
}

/** Whitespace between tokens: Go's `[\t\v\f\r ]+`. */
export const TOKEN_WHITESPACE = /[\t\v\f\r ]+/;

/** Splits a logical instruction line into keyword, flags and arguments. */
export function splitCommand(line: string): SplitCommand {
  const parts = goSplit(trimSpace(line), TOKEN_WHITESPACE, 2);
  const keyword = parts[0] ?? "";
  if (parts.length < 2) return { keyword, flags: [], rest: "" };
  const { rest, flags } = extractBuilderFlags(parts[1] ?? "");
  return { keyword, flags, rest: trimSpace(rest) };
}

/**
 * Peels `--flag[=value]` words off the front of `line`. BuildKit walks the line byte by
 * byte and widens each byte to a rune, so non-ASCII text inside a flag comes out as its
 * UTF-8 bytes read as Latin-1; the walk runs over the byte form to reproduce that.
 */
export function extractBuilderFlags(line: string): { rest: string; flags: string[] } {
  const bytes = toByteString(line);
  const words: string[] = [];
  let phase: "spaces" | "word" | "quote" = "spaces";
  let word = "";
  let quote = "";
  let blankOK = false;
  const done = (pos: number) => ({ rest: fromByteString(bytes.slice(pos)), flags: words });
  for (let pos = 0; pos <= bytes.length; pos++) {
    const atEnd = pos === bytes.length;
    let ch = bytes[pos] ?? "";
    if (phase === "spaces") {
      if (atEnd) break;
      if (isGoSpace(ch)) continue;
      // Keep going only while words start with "--".
      if (ch !== "-" || pos + 1 === bytes.length || bytes[pos + 1] !== "-") return done(pos);
      phase = "word";
    }
    if (atEnd) {
      if (word !== "--" && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === "word") {
      if (isGoSpace(ch)) {
        phase = "spaces";
        if (word === "--") return done(pos);
        if (blankOK || word.length > 0) words.push(word);
        word = "";
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = "quote";
        continue;
      }
      if (ch === "\\") {
        if (pos + 1 === bytes.length) continue;
        pos++;
        ch = bytes[pos] ?? "";
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = "word";
      continue;
    }
    if (ch === "\\") {
      if (pos + 1 === bytes.length) {
        phase = "word";
        continue;
      }
      pos++;
      ch = bytes[pos] ?? "";
    }
    word += ch;
  }
  return { rest: "", flags: words };
}
