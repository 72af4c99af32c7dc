/**
 * POSIX shell quoting, byte-for-byte identical to Python's `shlex.quote` and `shlex.join`.
 *
 * Modal builds its Dockerfile lines with these two functions, and a layer's key hashes
 * those lines, so "almost the same" quoting would silently change every key. The npm
 * `shlex` port merges runs of quotes and trims empty `''` pairs, which Python does not
 * do (docs/decisions/0003-shell-quoting.md), hence this small exact port.
 */

// Python: re.compile(r'[^\w@%+=:,./-]', re.ASCII). JS `\w` without the `u` flag is ASCII too.
const UNSAFE = /[^\w@%+=:,./-]/;

/** Quotes one word for a POSIX shell, exactly as Python's `shlex.quote` does. */
export function shellQuote(word: string): string {
  if (word === "") return "''";
  if (!UNSAFE.test(word)) return word;
  return `'${word.replaceAll("'", `'"'"'`)}'`;
}

/** Quotes each word and joins them with spaces, exactly as Python's `shlex.join` does. */
export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(" ");
}
