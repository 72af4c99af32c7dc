/**
 * Turns a layer's context sources (local files and directories at archive paths) into the
 * sorted entry list of its context (what the tarball of decision 0006 held), and resolves
 * it to a manifest whose file hashes come from the local hash index (decision 0022).
 */
import { lstat, stat } from "node:fs/promises";
import path from "node:path";
import { setImmediate } from "node:timers/promises";
import { compareContextPaths } from "@kiln-build/protocol";
import { buildContextManifest, type ResolvedContext } from "./context-manifest.ts";
import type { ContextEntry } from "./context-tar.ts";
import { walkContextSlices } from "./context-walk.ts";
import { NotFoundError } from "./errors.ts";
import { HashIndex } from "./hash-index.ts";
import type { ContextSource } from "./lowering/types.ts";
import { toWalkFilter } from "./pattern-matcher.ts";

// Directories Kiln creates to hold files at their container paths (`/app` for addLocalDir).
const SYNTHETIC_DIR_MODE = 0o755;

/** Lists every entry of a layer's context, parents included, sorted by path components. */
export async function collectContextEntries(sources: readonly ContextSource[]): Promise<ContextEntry[]> {
  // Sources may overlap, a later one replacing an earlier one's entry at the same path; a
  // single source lists each path once, so only its directories need remembering.
  const single = sources.length === 1;
  const byPath = new Map<string, ContextEntry>();
  const list: ContextEntry[] = [];
  const dirs = new Set<string>();
  const known = (archivePath: string) => (single ? dirs.has(archivePath) : byPath.has(archivePath));
  const put = (entry: ContextEntry) => {
    if (!single) byPath.set(entry.path, entry);
    else {
      list.push(entry);
      if (entry.type === "dir") dirs.add(entry.path);
    }
  };
  // Every entry's ancestors are added with it, so an entry whose parent is known needs no
  // more; the last parent seen answers its siblings without a look-up.
  let lastParent: string | undefined;
  const addParents = (archivePath: string) => {
    const slash = archivePath.lastIndexOf("/");
    if (slash < 0) return;
    if (lastParent !== undefined && slash === lastParent.length && archivePath.startsWith(lastParent)) return;
    const parent = archivePath.slice(0, slash);
    if (!known(parent)) {
      addParents(parent);
      put({ path: parent, absPath: "", type: "dir", mode: SYNTHETIC_DIR_MODE, size: 0 });
    }
    lastParent = parent;
  };
  const add = (entry: ContextEntry) => {
    addParents(entry.path);
    put(entry);
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
    const prefix = source.kind === "dir" && source.archivePath !== "" ? `${source.archivePath}/` : "";
    const walk = walkContextSlices(root, { ...filter, ...(includePatterns ? { includePatterns } : {}) });
    let first = true;
    for (const slice of walk) {
      // Between slices of synchronous walking, the event loop runs (a promise per entry would cost more than its lstat).
      if (!first) await setImmediate();
      first = false;
      for (const entry of slice) {
        // The walk's entries are fresh objects, so the archive path is set in place.
        entry.path = prefix + entry.path;
        add(entry);
      }
    }
  }
  const entries = single ? list : [...byPath.values()];
  // A single walked directory is already in order (but for names beyond U+FFFF): check before sorting.
  for (let i = 1; i < entries.length; i++) {
    if (compareContextPaths(entries[i - 1]!.path, entries[i]!.path) > 0) return entries.sort((a, b) => compareContextPaths(a.path, b.path));
  }
  return entries;
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
