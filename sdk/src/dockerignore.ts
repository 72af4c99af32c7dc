/**
 * `.dockerignore` files: reading one into patterns (moby/patternmatcher `ignorefile.ReadAll`)
 * and choosing which one applies to a build. Pure: the caller supplies file contents and
 * existence; `context-walk.ts` has the file-system wrapper.
 */
import { cleanPath, dirPath, goTrimSpace } from "./pattern-matcher.ts";

/**
 * Docker's ignore-file reading: strips a UTF-8 BOM, drops lines starting with `#` (only in
 * column one: ` # x` is the pattern `# x`), trims, skips blank lines, cleans each pattern and
 * strips a leading `/` (keeping a `!` prefix). `!` alone is kept; the matcher rejects it.
 */
export function parseDockerignore(text: string | null | undefined): string[] {
  if (text === null || text === undefined) return [];
  const patterns: string[] = [];
  // Go's bufio.ScanLines: split on \n, drop one trailing \r, no empty final token.
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  lines.forEach((rawLine, index) => {
    let line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    if (index === 0 && line.startsWith("\uFEFF")) line = line.slice(1);
    if (line.startsWith("#")) return;
    let pattern = goTrimSpace(line);
    if (pattern === "") return;
    const invert = pattern.startsWith("!");
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith("/")) pattern = pattern.slice(1);
    }
    patterns.push(invert ? `!${pattern}` : pattern);
  });
  return patterns;
}

/**
 * Which ignore file wins. `buildkit`: `<Dockerfile>.dockerignore` beside the Dockerfile (even
 * outside the context, as BuildKit reads it from the Dockerfile's own directory), else
 * `<context>/.dockerignore`. `modal`: Modal's `find_dockerignore_file`, which also tries a
 * plain `.dockerignore` beside the Dockerfile and ignores any candidate outside the context.
 */
export type IgnoreFileRule = "buildkit" | "modal";

/** Where to look for an ignore file; paths are slash-separated and share one base. */
export type IgnoreFileLookup = {
  contextDir: string;
  /** The Dockerfile, if the build has one on disk. */
  dockerfilePath?: string | undefined;
  /** Defaults to `buildkit`. */
  rule?: IgnoreFileRule;
};

function joinPath(dir: string, name: string): string {
  return cleanPath(dir === "" ? name : `${dir}/${name}`);
}

/** Whether `candidate` lies inside `dir`, lexically, after cleaning both. */
function isInside(candidate: string, dir: string): boolean {
  const c = cleanPath(candidate);
  const d = cleanPath(dir);
  if (d === ".") return !c.startsWith("/") && c !== ".." && !c.startsWith("../");
  if (d === "/") return c.startsWith("/");
  return c === d || c.startsWith(`${d}/`);
}

/** The ignore files to try, most specific first, before checking which exist. */
export function ignoreFileCandidates(lookup: IgnoreFileLookup): string[] {
  const rule = lookup.rule ?? "buildkit";
  const candidates: string[] = [];
  const dockerfile = lookup.dockerfilePath;
  if (dockerfile !== undefined && dockerfile !== "") {
    const clean = cleanPath(dockerfile);
    const dir = dirPath(clean);
    const name = clean.slice(clean.lastIndexOf("/") + 1);
    candidates.push(joinPath(dir, `${name}.dockerignore`));
    if (rule === "modal") candidates.push(joinPath(dir, ".dockerignore"));
  }
  candidates.push(joinPath(lookup.contextDir, ".dockerignore"));
  const unique = [...new Set(candidates)];
  return rule === "modal" ? unique.filter((c) => isInside(c, lookup.contextDir)) : unique;
}

/** The first existing candidate from `ignoreFileCandidates`, or null when none exists. */
export function selectIgnoreFile(lookup: IgnoreFileLookup & { exists: (path: string) => boolean }): string | null {
  return ignoreFileCandidates(lookup).find((c) => lookup.exists(c)) ?? null;
}
