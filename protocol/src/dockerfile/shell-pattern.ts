/**
 * Shell wildcard patterns for `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/repl}`.
 *
 * BuildKit turns the pattern into a Go regular expression and then uses Go's regexp
 * API. Go and JavaScript regexps agree on the constructs produced here, but not on
 * everything around them (`.` and `\r`, empty matches in replace-all, `$1` in the
 * replacement), so those parts are emulated explicitly.
 */

import { isGoDigit, isGoLetter } from "./text.ts";

/** Any code point except newline: Go's `.`, which (unlike JavaScript's) matches `\r`. */
const ANY = "[^\\n]";

/**
 * Converts a shell pattern (`*`, `?`, `\` escapes; no bracket expressions) into a regular
 * expression, as BuildKit's `convertShellPatternToRegex` does.
 */
export function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? "^" : "";
  const star = greedy ? `${ANY}*` : `${ANY}*?`;
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i] ?? "";
    switch (tok) {
      case "*":
        out += star;
        continue;
      case "?":
        out += ANY;
        continue;
      case "\\": {
        const next = chars[i + 1];
        // `}` and `/` are escaped only to get them past `${...}` parsing.
        if (next === "}" || next === "/") continue;
        out += "\\";
        i++;
        tok = chars[i] ?? "";
        if (tok !== "*" && tok !== "?" && tok !== "\\") {
          throw new Error(`invalid escape '\\${tok === "" ? "\ufffd" : tok}'`);
        }
        break;
      }
      case "[":
      case "]":
      case "{":
      case "}":
      case ".":
      case "+":
      case "(":
      case ")":
      case "|":
      case "^":
      case "$":
        out += "\\";
        break;
    }
    out += tok;
  }
  return new RegExp(out, "u");
}

function compile(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  try {
    return shellPatternToRegExp(pattern, greedy, anchored);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`invalid pattern (${pattern}) in substitution: ${why}`);
  }
}

/** `${value#pattern}` (shortest) or `${value##pattern}` (greedy). */
export function trimPrefixPattern(pattern: string, value: string, greedy: boolean): string {
  const m = compile(pattern, greedy, true).exec(value);
  return m === null ? value : value.slice(m.index + m[0].length);
}

/** Reverses a pattern but keeps each `\x` escape pair in order (`a\*c` becomes `c\*a`). */
export function reversePattern(pattern: string): string {
  const runes = Array.from(pattern);
  const out: string[] = new Array<string>(runes.length);
  const last = runes.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = runes[i] ?? "";
    const at = last - i;
    if (tok === "\\" && i !== last) {
      out[at - 1] = tok;
      out[at] = runes[i + 1] ?? "";
      i += 2;
    } else {
      out[at] = tok;
      i++;
    }
  }
  return out.join("");
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join("");
}

/**
 * `${value%pattern}` / `${value%%pattern}`. Regexps find leftmost matches only, so both the
 * value and the pattern are reversed to turn "shortest suffix" into "shortest prefix".
 */
export function trimSuffixPattern(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefixPattern(reversePattern(pattern), reverseString(value), greedy));
}

/** `${value/pattern/replacement}` (first match) or `${value//pattern/replacement}` (all). */
export function replacePattern(pattern: string, value: string, replacement: string, all: boolean): string {
  const re = compile(pattern, true, false);
  if (!all) {
    const m = re.exec(value);
    if (m === null) return value;
    return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
  }
  return goReplaceAll(value, new RegExp(re.source, "gu"), replacement);
}

/**
 * Go's `Regexp.ReplaceAllString`: empty matches right after a previous match are skipped
 * and `$name` / `${name}` in the replacement refer to capture groups (only `$0` exists).
 */
function goReplaceAll(src: string, re: RegExp, template: string): string {
  let out = "";
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (m === null) break;
    const start = m.index;
    const end = start + m[0].length;
    out += src.slice(lastMatchEnd, start);
    if (end > lastMatchEnd || start === 0) out += expandTemplate(template, m[0]);
    lastMatchEnd = end;
    const cp = src.codePointAt(searchPos);
    const width = cp === undefined ? 0 : cp > 0xffff ? 2 : 1;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos++;
    else searchPos = end;
  }
  return out + src.slice(lastMatchEnd);
}

/** Go's `Regexp.expand` for a regexp whose only group is the whole match. */
function expandTemplate(template: string, match: string): string {
  let out = "";
  let rest = template;
  for (;;) {
    const i = rest.indexOf("$");
    if (i < 0) break;
    out += rest.slice(0, i);
    rest = rest.slice(i);
    if (rest.length > 1 && rest[1] === "$") {
      out += "$";
      rest = rest.slice(2);
      continue;
    }
    const ref = extractGroupRef(rest);
    if (ref === undefined) {
      out += "$";
      rest = rest.slice(1);
      continue;
    }
    rest = ref.rest;
    if (ref.num === 0) out += match;
  }
  return out + rest;
}

function extractGroupRef(str: string): { num: number; rest: string } | undefined {
  if (str.length < 2 || str[0] !== "$") return undefined;
  const brace = str[1] === "{";
  const body = Array.from(str.slice(brace ? 2 : 1));
  let n = 0;
  while (n < body.length) {
    const ch = body[n] ?? "";
    if (!isGoLetter(ch) && !isGoDigit(ch) && ch !== "_") break;
    n++;
  }
  if (n === 0) return undefined;
  const name = body.slice(0, n).join("");
  let restChars = body.slice(n);
  if (brace) {
    if (restChars[0] !== "}") return undefined;
    restChars = restChars.slice(1);
  }
  let num = /^[0-9]+$/.test(name) && name.length <= 8 ? Number(name) : -1;
  if (name.length > 1 && name[0] === "0") num = -1;
  return { num, rest: restChars.join("") };
}
