/**
 * Word splitting helpers shared by the shell lexer and the instruction parsers.
 */

import { isGoSpace } from "./text.ts";

/**
 * Accumulates the words of a shell word list as the lexer produces text. Text that came
 * from variable expansion or plain characters is split on spaces; quoted or escaped text
 * is appended raw. Mirrors BuildKit's `wordsStruct`, including its quirk that an empty
 * quoted string (`""`) produces no word.
 */
export class WordSplitter {
  #word = "";
  #words: string[] = [];
  #inWord = false;

  /** Adds one character, splitting the word at unquoted whitespace. */
  addChar(ch: string): void {
    if (isGoSpace(ch)) {
      if (this.#inWord && this.#word.length !== 0) {
        this.#words.push(this.#word);
        this.#word = "";
        this.#inWord = false;
      }
      return;
    }
    this.addRawChar(ch);
  }

  /** Adds one character that must stay in the current word (it was escaped). */
  addRawChar(ch: string): void {
    this.#word += ch;
    this.#inWord = true;
  }

  /** Adds expanded text, splitting it at whitespace. */
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  /** Adds quoted text, which never splits. */
  addRawString(s: string): void {
    this.#word += s;
    this.#inWord = true;
  }

  /** The finished list of words (the pending word, if non-empty, is flushed). */
  getWords(): string[] {
    if (this.#word.length > 0) {
      this.#words.push(this.#word);
      this.#word = "";
      this.#inWord = false;
    }
    return this.#words;
  }
}

/**
 * Splits an instruction's arguments into words, honouring quotes and escapes but keeping
 * them in the words (BuildKit's `parseWords`, used for the `key=value` forms of ENV, LABEL
 * and ARG; quotes are removed later, during variable expansion).
 */
export function parseWords(rest: string, escapeToken: string): string[] {
  const chars = Array.from(rest);
  const words: string[] = [];
  let phase: "spaces" | "word" | "quote" = "spaces";
  let quote = "";
  let blankOK = false;
  let word = "";
  for (let pos = 0; pos <= chars.length; pos++) {
    const atEnd = pos === chars.length;
    let ch = chars[pos] ?? "";
    if (phase === "spaces") {
      if (atEnd) break;
      if (isGoSpace(ch)) continue;
      phase = "word";
    }
    if (atEnd) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === "word") {
      if (isGoSpace(ch)) {
        phase = "spaces";
        if (blankOK || word.length > 0) words.push(word);
        word = "";
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = "quote";
      }
      if (ch === escapeToken) {
        // A trailing escape is dropped; otherwise it and the next char stay as written.
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos] ?? "";
      }
      word += ch;
      continue;
    }
    // Inside quotes; note the opening quote itself was appended in the "word" phase.
    if (ch === quote) phase = "word";
    if (ch === escapeToken && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = "word";
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos] ?? "";
    }
    word += ch;
  }
  return words;
}
