/**
 * Go's `strings.TrimSpace`, `path.Clean` and `path.Dir`, which moby/patternmatcher and
 * BuildKit's dockerignore reader apply to patterns; JavaScript's look-alikes differ.
 */

// Go's unicode.IsSpace set; String.prototype.trim differs (it strips U+FEFF, keeps U+0085).
const GO_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const GO_TRIM = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, "gu");

/** Go's `strings.TrimSpace`. */
export function goTrimSpace(s: string): string {
  return s.replace(GO_TRIM, "");
}

/** Go's `path.Clean` on a slash-separated path (lexical: `.`/`..`/duplicate slashes resolved). */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  let leadingDotDots = 0;
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > leadingDotDots) out.pop();
      else if (!rooted) {
        out.push("..");
        leadingDotDots++;
      }
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return `/${joined}`;
  return joined === "" ? "." : joined;
}

/** Go's `path.Dir`: everything but the last element, cleaned. */
export function dirPath(p: string): string {
  return cleanPath(p.slice(0, p.lastIndexOf("/") + 1));
}
