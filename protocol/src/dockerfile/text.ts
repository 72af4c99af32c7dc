/**
 * Go-compatible character classes, trimming and quoting.
 *
 * BuildKit is written in Go, and several of its decisions hinge on Go's own notion of
 * "space", "letter" or "printable" (which differ from JavaScript's `\s`, e.g. Go counts
 * U+0085 as space but not U+FEFF). Porting those predicates exactly keeps word splitting
 * and the parse-tree dump identical to BuildKit's.
 */

const GO_LETTER = /^\p{L}$/u;
const GO_DIGIT = /^\p{Nd}$/u;
const GO_PRINT = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** Go's `unicode.IsSpace` for a single code point given as a string. */
export function isGoSpace(ch: string): boolean {
  switch (ch) {
    case "\t":
    case "\n":
    case "\v":
    case "\f":
    case "\r":
    case " ":
    case "\u0085":
    case "\u00a0":
    case "\u1680":
    case "\u2028":
    case "\u2029":
    case "\u202f":
    case "\u205f":
    case "\u3000":
      return true;
    default:
      return ch >= "\u2000" && ch <= "\u200a" && ch.length === 1;
  }
}

/** Go's `unicode.IsLetter` for a single code point given as a string. */
export function isGoLetter(ch: string): boolean {
  return GO_LETTER.test(ch);
}

/** Go's `unicode.IsDigit` (any decimal digit, not only ASCII) for one code point. */
export function isGoDigit(ch: string): boolean {
  return GO_DIGIT.test(ch);
}

/** Go's `strings.TrimLeftFunc(s, unicode.IsSpace)`. */
export function trimLeftSpace(s: string): string {
  let i = 0;
  for (const ch of s) {
    if (!isGoSpace(ch)) break;
    i += ch.length;
  }
  return s.slice(i);
}

/** Go's `strings.TrimRightFunc(s, unicode.IsSpace)`. */
export function trimRightSpace(s: string): string {
  const chars = Array.from(s);
  let end = chars.length;
  while (end > 0 && isGoSpace(chars[end - 1] ?? "")) end--;
  return chars.slice(0, end).join("");
}

/** Go's `strings.TrimSpace`. */
export function trimSpace(s: string): string {
  return trimRightSpace(trimLeftSpace(s));
}

const encoder = new TextEncoder();
// Not fatal (the default): invalid bytes become U+FFFD, as Go's string conversion does.
const decoder = new TextDecoder();

/** Number of bytes `s` takes in UTF-8, which is what BuildKit's line limit counts. */
export function utf8Length(s: string): number {
  return encoder.encode(s).length;
}

/**
 * Maps a string to its UTF-8 bytes, one char per byte (U+0000..U+00FF). Some BuildKit
 * code walks Dockerfile text byte by byte (`rune(line[i])`); running the same walk over
 * this form reproduces its behaviour, including how it widens each byte to a rune.
 */
export function toByteString(s: string): string {
  let out = "";
  for (const b of encoder.encode(s)) out += String.fromCharCode(b);
  return out;
}

/** Reverses {@link toByteString}: decodes a one-char-per-byte string as UTF-8. */
export function fromByteString(bytes: string): string {
  const buf = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) buf[i] = bytes.charCodeAt(i) & 0xff;
  return decoder.decode(buf);
}

/** Compares two strings by their UTF-8 bytes, the order Go's `sort.Strings` uses. */
export function compareUtf8(a: string, b: string): number {
  const ea = encoder.encode(a);
  const eb = encoder.encode(b);
  const n = Math.min(ea.length, eb.length);
  for (let i = 0; i < n; i++) {
    const d = (ea[i] ?? 0) - (eb[i] ?? 0);
    if (d !== 0) return d;
  }
  return ea.length - eb.length;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

/** Go's `strconv.Quote`: double-quoted, with Go escapes for non-printable runes. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") {
      out += `\\${ch}`;
      continue;
    }
    // Lone surrogates cannot exist in a Go string; Go would have replaced them with U+FFFD.
    if (cp >= 0xd800 && cp <= 0xdfff) {
      out += "\\ufffd";
      continue;
    }
    if (GO_PRINT.test(ch) || ch === " ") {
      out += ch;
      continue;
    }
    switch (ch) {
      case "\x07":
        out += "\\a";
        continue;
      case "\b":
        out += "\\b";
        continue;
      case "\f":
        out += "\\f";
        continue;
      case "\n":
        out += "\\n";
        continue;
      case "\r":
        out += "\\r";
        continue;
      case "\t":
        out += "\\t";
        continue;
      case "\v":
        out += "\\v";
        continue;
    }
    if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x10000) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return `${out}"`;
}

/**
 * Go's `regexp.Split(s, n)` for a pattern that cannot match the empty string. Kept
 * verbatim in spirit because Go's edge cases (a match at the very start or end yields an
 * empty element) differ from `String.prototype.split`.
 */
export function goSplit(s: string, re: RegExp, n: number): string[] {
  if (n === 0) return [];
  if (s === "") return [""];
  const global = new RegExp(re.source, re.flags.includes("g") ? re.flags : `${re.flags}g`);
  const out: string[] = [];
  let beg = 0;
  let end = 0;
  for (let m = global.exec(s); m !== null; m = global.exec(s)) {
    if (n > 0 && out.length === n - 1) break;
    end = m.index;
    const matchEnd = m.index + m[0].length;
    if (matchEnd !== 0) out.push(s.slice(beg, end));
    beg = matchEnd;
  }
  if (end !== s.length) out.push(s.slice(beg));
  return out;
}
