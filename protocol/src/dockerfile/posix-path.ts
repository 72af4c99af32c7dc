/**
 * POSIX path helpers with Go's `path.Clean` / `path.Join` semantics (no `node:path`: these
 * modules also run in the Cloudflare Worker).
 */

/** Go's `path.Clean`: collapses `//`, `.` and `..`; never climbs above `/`; "" becomes ".". */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return `/${joined}`;
  return joined === "" ? "." : joined;
}

/** Go's `path.Join`: joins the non-empty elements with `/` and cleans the result. */
export function joinPath(...elems: string[]): string {
  const parts = elems.filter((e) => e !== "");
  return parts.length === 0 ? "" : cleanPath(parts.join("/"));
}
