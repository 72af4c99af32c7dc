/**
 * The Dockerfile shell lexer: quote removal, `$VAR` / `${VAR...}` expansion and word
 * splitting, ported from BuildKit's `frontend/dockerfile/shell` so that paths, stage names
 * and mount options expand exactly as they would in a real build.
 */

import { replacePattern, trimPrefixPattern, trimSuffixPattern } from "./shell-pattern.ts";
import { WordSplitter } from "./shell-words.ts";
import { goQuote, isGoDigit, isGoLetter } from "./text.ts";

/** Where the lexer looks variables up; `get` returns `undefined` for unset ones. */
export interface EnvGetter {
  /** The value of `name`, or `undefined` when it is not set. */
  get(name: string): string | undefined;
}

/** Knobs of the lexer, named after BuildKit's `shell.Lex` fields. */
export interface ShellLexOptions {
  /** Escape character: `\` (default) or `` ` `` (from the `# escape=` directive). */
  escapeToken?: string;
  /** Keep quote characters in the output instead of removing them. */
  rawQuotes?: boolean;
  /** Keep escape characters in the output instead of removing them. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (used for heredoc bodies). */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written instead of expanding them to "". */
  skipUnsetEnv?: boolean;
}

/** Everything one lexer run produces. */
export interface ShellLexResult {
  /** The expanded text as a single word (spaces kept). */
  result: string;
  /** The expanded text split into words. */
  words: string[];
  /** Names of variables that were found in the environment. */
  matched: Set<string>;
  /** Names of variables that were referenced but not set. */
  unmatched: Set<string>;
}

/** An empty environment. */
export const EMPTY_ENV: EnvGetter = { get: () => undefined };

const EOF = "";

function isSpecialParam(ch: string): boolean {
  return "@*#?-$!0".includes(ch) && ch.length === 1;
}

// Whitespace that `<<` swallows so that `<< EOF` stays a single (heredoc) word.
function isHeredocSpace(ch: string): boolean {
  return ch === " " || ch === "\t" || ch === "\r";
}

/** BuildKit's shell lexer; one instance can process many words. */
export class ShellLex {
  readonly #escape: string;
  readonly #rawQuotes: boolean;
  readonly #rawEscapesDefault: boolean;
  readonly #skipProcessQuotes: boolean;
  readonly #skipUnsetEnv: boolean;
  #chars: string[] = [];
  #pos = 0;
  #rawEscapes = false;
  #env: EnvGetter = EMPTY_ENV;
  #matched = new Set<string>();
  #unmatched = new Set<string>();

  constructor(options: ShellLexOptions = {}) {
    this.#escape = options.escapeToken ?? "\\";
    this.#rawQuotes = options.rawQuotes ?? false;
    this.#rawEscapesDefault = options.rawEscapes ?? false;
    this.#skipProcessQuotes = options.skipProcessQuotes ?? false;
    this.#skipUnsetEnv = options.skipUnsetEnv ?? false;
  }

  /** Expands `word` into one string (BuildKit's `ProcessWord`). */
  processWord(word: string, env: EnvGetter): string {
    return this.process(word, env).result;
  }

  /** Expands `word` and splits the result into words (BuildKit's `ProcessWords`). */
  processWords(word: string, env: EnvGetter): string[] {
    return this.process(word, env).words;
  }

  /** Expands `word`; throws an `Error` describing the syntax problem if it is malformed. */
  process(word: string, env: EnvGetter): ShellLexResult {
    this.#chars = Array.from(word);
    // Go's text/scanner silently drops a byte-order mark at the start of its input.
    this.#pos = this.#chars[0] === "\ufeff" ? 1 : 0;
    this.#env = env;
    this.#rawEscapes = this.#rawEscapesDefault;
    this.#matched = new Set();
    this.#unmatched = new Set();
    try {
      const [result, words] = this.#processStopOn(EOF, this.#rawEscapesDefault);
      return { result, words, matched: this.#matched, unmatched: this.#unmatched };
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(`failed to process ${goQuote(word)}: ${why}`);
    }
  }

  #peek(): string {
    return this.#chars[this.#pos] ?? EOF;
  }

  #next(): string {
    const ch = this.#chars[this.#pos] ?? EOF;
    if (ch !== EOF) this.#pos++;
    return ch;
  }

  #processStopOn(stop: string, rawEscapes: boolean): [string, string[]] {
    const saved = this.#rawEscapes;
    this.#rawEscapes = rawEscapes;
    try {
      let result = "";
      const words = new WordSplitter();
      while (this.#peek() !== EOF) {
        let ch = this.#peek();
        if (stop !== EOF && ch === stop) {
          this.#next();
          return [result, words.getWords()];
        }
        if (ch === "$") {
          const tmp = this.#processDollar();
          result += tmp;
          words.addString(tmp);
          continue;
        }
        if (ch === "<") {
          const tmp = this.#processPossibleHeredoc();
          result += tmp;
          words.addRawString(tmp);
          continue;
        }
        if (!this.#skipProcessQuotes && (ch === "'" || ch === '"')) {
          const tmp = ch === "'" ? this.#processSingleQuote() : this.#processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
          continue;
        }
        ch = this.#next();
        if (ch === this.#escape) {
          if (this.#rawEscapes) {
            words.addRawChar(ch);
            result += ch;
          }
          // An escape escapes the next character, except at the very end.
          ch = this.#next();
          if (ch === EOF) break;
          words.addRawChar(ch);
        } else {
          words.addChar(ch);
        }
        result += ch;
      }
      if (stop !== EOF) throw new Error(`unexpected end of statement while looking for matching ${stop}`);
      return [result, words.getWords()];
    } finally {
      this.#rawEscapes = saved;
    }
  }

  #processSingleQuote(): string {
    // Everything up to the next ' is literal; a ' cannot be escaped inside ''.
    let result = "";
    const open = this.#next();
    if (this.#rawQuotes) result += open;
    for (;;) {
      const ch = this.#next();
      if (ch === EOF) throw new Error("unexpected end of statement while looking for matching single-quote");
      if (ch === "'") {
        if (this.#rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  #processDoubleQuote(): string {
    // Literal except `$` expansions; the escape char only escapes `"`, `$` and itself.
    let result = "";
    const open = this.#next();
    if (this.#rawQuotes) result += open;
    for (;;) {
      const peeked = this.#peek();
      if (peeked === EOF) {
        throw new Error("unexpected end of statement while looking for matching double-quote");
      }
      if (peeked === '"') {
        const ch = this.#next();
        if (this.#rawQuotes) result += ch;
        return result;
      }
      if (peeked === "$") {
        result += this.#processDollar();
        continue;
      }
      let ch = this.#next();
      if (ch === this.#escape) {
        if (this.#rawEscapes) result += ch;
        const after = this.#peek();
        if (after === EOF) continue;
        if (after === '"' || after === "$" || after === this.#escape) ch = this.#next();
      }
      result += ch;
    }
  }

  #processPossibleHeredoc(): string {
    this.#next();
    if (this.#peek() !== "<") return "<";
    this.#next();
    let space = "";
    while (isHeredocSpace(this.#peek())) space += this.#next();
    return `<<${space}`;
  }

  #getEnv(name: string): [string, boolean] {
    const value = this.#env.get(name);
    if (value === undefined) {
      this.#unmatched.add(name);
      return ["", false];
    }
    this.#matched.add(name);
    return [value, true];
  }

  #processDollar(): string {
    this.#next();
    if (this.#peek() !== "{") {
      const name = this.#processName();
      if (name === "") return "$";
      const [value, found] = this.#getEnv(name);
      if (!found && this.#skipUnsetEnv) return `$${name}`;
      return value;
    }
    this.#next();
    const first = this.#peek();
    if (first === EOF) throw new Error("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") throw new Error("syntax error: bad substitution");
    const name = this.#processName();
    let ch = this.#next();
    if (ch === EOF) throw new Error("syntax error: missing '}'");
    let modifier = ch;
    if (ch === "}") {
      const [value, set] = this.#getEnv(name);
      if (!set && this.#skipUnsetEnv) return `\${${name}}`;
      return value;
    }
    if (ch === "/") return this.#processReplace(name);
    let nullIsUnset = false;
    if (ch === ":") {
      nullIsUnset = true;
      ch = this.#next();
      modifier += ch;
    } else if (!"+-?#%".includes(ch)) {
      throw new Error(`unsupported modifier (${modifier}) in substitution`);
    }
    const word = this.#stopOnBrace(ch === "#" || ch === "%");
    const [value, set] = this.#getEnv(name);
    if (this.#skipUnsetEnv && !set) return `\${${name}${modifier}${word}}`;
    const unset = !set || (nullIsUnset && value === "");
    switch (ch) {
      case "-":
        return unset ? word : value;
      case "+":
        return unset ? "" : word;
      case "?":
        if (!set) throw new Error(`${name}: ${word === "" ? "is not allowed to be unset" : word}`);
        if (nullIsUnset && value === "") {
          throw new Error(`${name}: ${word === "" ? "is not allowed to be empty" : word}`);
        }
        return value;
      case "%":
      case "#": {
        // `%`/`#` remove the shortest match, `%%`/`##` the longest.
        const greedy = word.startsWith(ch);
        const pattern = greedy ? word.slice(1) : word;
        return ch === "%" ? trimSuffixPattern(pattern, value, greedy) : trimPrefixPattern(pattern, value, greedy);
      }
      default:
        throw new Error(`unsupported modifier (${modifier}) in substitution`);
    }
  }

  #stopOnBrace(rawEscapes: boolean): string {
    try {
      return this.#processStopOn("}", rawEscapes)[0];
    } catch (err) {
      if (this.#peek() === EOF) throw new Error("syntax error: missing '}'");
      throw err;
    }
  }

  #processReplace(name: string): string {
    const all = this.#peek() === "/";
    if (all) this.#next();
    let pattern: string;
    try {
      pattern = this.#processStopOn("/", true)[0];
    } catch (err) {
      if (this.#peek() === EOF) throw new Error("syntax error: missing '/' in ${}");
      throw err;
    }
    const replacement = this.#stopOnBrace(true);
    const [value, set] = this.#getEnv(name);
    if (this.#skipUnsetEnv && !set) return `\${${name}/${pattern}/${replacement}}`;
    return replacePattern(pattern, value, replacement, all);
  }

  #processName(): string {
    // A name is letters, digits and `_`; a leading digit reads only digits ($1, $10);
    // a special parameter ($@, $?, ...) is a single character.
    let name = "";
    while (this.#peek() !== EOF) {
      const ch = this.#peek();
      if (name === "" && isGoDigit(ch)) {
        while (this.#peek() !== EOF && isGoDigit(this.#peek())) name += this.#next();
        return name;
      }
      if (name === "" && isSpecialParam(ch)) return this.#next();
      if (!isGoLetter(ch) && !isGoDigit(ch) && ch !== "_") break;
      name += this.#next();
    }
    return name;
  }
}
