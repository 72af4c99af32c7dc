/**
 * Turns a layer's context sources (local files and directories at archive paths) into the
 * sorted entry list of its context (what the tarball of decision 0006 held), and resolves
 * it to a manifest whose file hashes come from the local hash index (decision 0022).
 */
import { lstat, stat } from "node:fs/promises";
import path from "node:path";
import { buildContextManifest, type ResolvedContext } from "./context-manifest.ts";
import type { ContextEntry } from "./context-tar.ts";
import { walkContext } from "./context-walk.ts";
import { NotFoundError } from "./errors.ts";
import { HashIndex } from "./hash-index.ts";
import type { ContextSource } from "./lowering/types.ts";
import { toWalkFilter } from "./pattern-matcher.ts";

// Directories Kiln creates to hold files at their container paths (`/app` for addLocalDir).
const SYNTHETIC_DIR_MODE = 0o755;

/** Lists every entry of a layer's context, parents included, sorted by path components. */
export async function collectContextEntries(sources: readonly ContextSource[]): Promise<ContextEntry[]> {
  const byPath = new Map<string, ContextEntry>();
  const add = (entry: ContextEntry) => {
    for (const parent of parentsOf(entry.path)) {
      if (!byPath.has(parent)) byPath.set(parent, { path: parent, absPath: "", type: "dir", mode: SYNTHETIC_DIR_MODE, size: 0 });
    }
    byPath.set(entry.path, entry);
  };
  for (const source of sources) {
    if (source.kind === "file") {
      // Symlinked files are stored as their targets' contents, as Modal uploads them.
      const info = await stat(source.localPath).catch(() => {
        throw new NotFoundError(`local file ${source.localPath} does not exist`);
      });
      add({ path: source.archivePath, absPath: source.localPath, type: "file", mode: info.mode & 0o7777, size: info.size });
      continue;
    }
    const root = source.kind === "dir" ? source.localPath : source.contextDir;
    await lstat(root).catch(() => {
      throw new NotFoundError(`local dir ${root} does not exist`);
    });
    const filter = toWalkFilter(source.ignore);
    const includePatterns = source.kind === "docker-context" && !source.includePatterns.includes(".") ? source.includePatterns : undefined;
    const prefix = source.kind === "dir" ? source.archivePath : "";
    for await (const entry of walkContext(root, { ...filter, ...(includePatterns ? { includePatterns } : {}) })) {
      add({ ...entry, path: prefix ? `${prefix}/${entry.path}` : entry.path });
    }
  }
  return [...byPath.values()].sort((a, b) => comparePaths(a.path, b.path));
}

/**
 * Resolves a layer's context to its manifest, or returns null when the layer sends no local
 * files. Unchanged files cost a stat (the hash index of these sources' roots, in `cacheDir`).
 */
export async function resolveContext(sources: readonly ContextSource[], cacheDir?: string): Promise<ResolvedContext | null> {
  if (sources.length === 0) return null;
  const entries = await collectContextEntries(sources);
  const index = await HashIndex.open(sources.map(sourceRoot), cacheDir);
  const resolved = await buildContextManifest(entries, index);
  await index.save();
  return resolved;
}

/** The local directory a source's files come from: the key of its hash index. */
function sourceRoot(source: ContextSource): string {
  if (source.kind === "file") return path.dirname(source.localPath);
  return source.kind === "dir" ? source.localPath : source.contextDir;
}

function parentsOf(archivePath: string): string[] {
  const parts = archivePath.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

/** Orders paths component by component, so a directory always precedes its contents. */
export function comparePaths(a: string, b: string): number {
  const x = a.split("/");
  const y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}
