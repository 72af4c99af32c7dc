/**
 * Whether an ADD/COPY source is a Git repository, a URL or a path in the build context,
 * by BuildKit's rules (`dfgitutil.ParseGitRef`, `gitutil.ParseURL`, `isHTTPSource`).
 */

/** What kind of thing an ADD/COPY source names. */
export type SourceKind = "git" | "url" | "local";

const PROTO = /^[a-zA-Z0-9]+:\/\//;
const GIT_PROTOS = new Set(["http", "https", "ssh", "git"]);
// SCP-like Git address: [user@]host:path[#fragment], e.g. git@github.com:moby/buildkit.git.
const SCP_LIKE = /^(?:[a-zA-Z0-9_-]+@)?[a-zA-Z0-9.-]+:[^\n]*$/;
// What Go's url.Parse takes for a scheme.
const URL_SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

function urlPath(src: string): string {
  const afterScheme = src.slice(src.indexOf("://") + 3);
  const slash = afterScheme.indexOf("/");
  if (slash < 0) return "";
  const raw = afterScheme.slice(slash).split(/[?#]/)[0] ?? "";
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

// Go's url.Parse finds a scheme and no opaque part: "x:/path" is a URL, not SCP-like.
function hasHierarchicalScheme(src: string): boolean {
  const beforeFragment = src.split("#")[0] ?? "";
  const m = URL_SCHEME.exec(beforeFragment);
  if (m === null) return false;
  const rest = beforeFragment.slice(m[0].length);
  return rest === "" || rest.startsWith("/");
}

function isGitRef(src: string): boolean {
  if (src.startsWith("./") || src.startsWith("../")) return false;
  // "github.com/org/repo" is a Git ref BuildKit treats like a local path for ADD/COPY.
  if (src.startsWith("github.com/")) return false;
  const proto = PROTO.exec(src)?.[0];
  if (proto !== undefined) {
    const scheme = proto.slice(0, -3).toLowerCase();
    if (!GIT_PROTOS.has(scheme)) return false;
    // An HTTP(S) URL is a Git ref only when its path ends in ".git".
    if (scheme === "http" || scheme === "https") return urlPath(src).endsWith(".git");
    return true;
  }
  return !hasHierarchicalScheme(src) && SCP_LIKE.test(src);
}

/** Classifies an ADD/COPY source: a Git ref, an HTTP(S) URL, or a build-context path. */
export function sourceKind(src: string): SourceKind {
  if (isGitRef(src)) return "git";
  if (src.startsWith("http://") || src.startsWith("https://")) return "url";
  return "local";
}
