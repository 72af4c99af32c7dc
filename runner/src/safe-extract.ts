/**
 * Safe extraction of context tarballs (and python-build-standalone archives) into a fresh
 * directory. Everything in an archive is hostile until checked: absolute paths, `..`
 * components, links resolving outside the root (through chains of the archive's own
 * symlinks), writes through a symlink, device and FIFO entries, and tar bombs (limits on
 * total bytes, entry count and path depth) are refused with an {@link UnsafeArchiveError}.
 * Nothing is ever followed: files are created with O_EXCL | O_NOFOLLOW.
 */
import { constants, createReadStream } from "node:fs";
import { chmod, link, lstat, lutimes, mkdir, open, symlink, unlink, utimes } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { type Header, extract as tarExtract } from "tar-stream";

/** Limits that stop tar bombs. */
export type ExtractLimits = { maxBytes: number; maxEntries: number; maxDepth: number };

/** Defaults: 10 GiB, one million entries, 64 path components. */
export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = { maxBytes: 10 * 1024 ** 3, maxEntries: 1_000_000, maxDepth: 64 };

/** Which safety rule an archive broke. */
export type UnsafeArchiveCode =
  | "absolute_path"
  | "path_traversal"
  | "link_escape"
  | "write_through_symlink"
  | "special_file"
  | "too_large"
  | "too_many_entries"
  | "too_deep"
  | "bad_entry";

/** An archive the runner refuses to extract; `message` names the entry and the rule. */
export class UnsafeArchiveError extends Error {
  /** The rule that was broken. */
  readonly code: UnsafeArchiveCode;
  constructor(code: UnsafeArchiveCode, message: string) {
    super(message);
    this.name = "UnsafeArchiveError";
    this.code = code;
  }
}

/** What an extraction wrote. */
export type ExtractStats = { entries: number; bytes: number };

/** Extracts the (optionally gzip-compressed) tar file `file` into the existing directory `root`. */
export async function extractTarFile(file: string, root: string, limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS): Promise<ExtractStats> {
  const handle = await open(file, "r");
  const magic = Buffer.alloc(2);
  await handle.read(magic, 0, 2, 0);
  await handle.close();
  const raw = createReadStream(file);
  const gzip = magic[0] === 0x1f && magic[1] === 0x8b;
  return extractTar(gzip ? raw.pipe(createGunzip()) : raw, root, limits);
}

/** Extracts an uncompressed tar stream into the existing directory `root`. */
export async function extractTar(source: Readable, root: string, limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS): Promise<ExtractStats> {
  const state: State = { root: path.resolve(root), limits, entries: 0, bytes: 0, dirs: new Set([""]), symlinks: new Map(), dirTimes: [] };
  const extractor = tarExtract();
  source.on("error", (error) => extractor.destroy(error));
  source.pipe(extractor);
  try {
    for await (const entry of extractor) {
      await writeEntry(state, entry.header, entry);
    }
  } finally {
    source.unpipe(extractor);
    source.destroy();
  }
  // A link checked on arrival can be redirected by a later one (`t -> s/..`, then `s -> .`):
  // check every link against the final tree.
  for (const [rel, target] of state.symlinks) checkLinkTarget(state, rel, target);
  // Directory times last: creating their contents changed them.
  for (const { abs, mtime } of state.dirTimes.reverse()) await utimes(abs, mtime, mtime);
  return { entries: state.entries, bytes: state.bytes };
}

type State = {
  root: string;
  limits: ExtractLimits;
  entries: number;
  bytes: number;
  /** Relative paths known to be real directories (never replaced once created). */
  dirs: Set<string>;
  /** Relative path -> target of every symlink extracted. */
  symlinks: Map<string, string>;
  dirTimes: { abs: string; mtime: Date }[];
};

/** An entry's data stream (a streamx Readable). */
type EntryBody = AsyncIterable<unknown> & { resume(): unknown };

async function writeEntry(state: State, header: Header, body: EntryBody): Promise<void> {
  const rel = checkedPath(state, header.name, "entry");
  state.entries++;
  if (state.entries > state.limits.maxEntries) {
    throw new UnsafeArchiveError(
      "too_many_entries",
      `the archive has more than ${state.limits.maxEntries} entries (limit: max entries); refusing a possible tar bomb`,
    );
  }
  const abs = path.join(state.root, rel);
  const mode = (header.mode ?? 0o644) & 0o7777;
  const mtime = header.mtime ?? new Date(0);
  switch (header.type) {
    case "directory": {
      if (rel === "") return void body.resume();
      await ensureParents(state, rel);
      const existing = await lstatOrNull(abs);
      if (existing?.isSymbolicLink()) throw throughSymlink(header.name);
      if (existing && !existing.isDirectory())
        throw new UnsafeArchiveError("bad_entry", `directory entry ${quote(header.name)} replaces a file`);
      if (!existing) await mkdir(abs, { mode: 0o700 });
      await chmod(abs, mode);
      state.dirs.add(rel);
      state.dirTimes.push({ abs, mtime });
      return void body.resume();
    }
    case "file":
    case "contiguous-file": {
      const size = header.size ?? 0;
      if (state.bytes + size > state.limits.maxBytes) {
        throw new UnsafeArchiveError(
          "too_large",
          `the archive expands to more than ${state.limits.maxBytes} bytes (limit: max bytes); refusing a possible tar bomb`,
        );
      }
      await prepareLeaf(state, rel, header.name);
      const file = await open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        for await (const chunk of body) {
          state.bytes += (chunk as Buffer).length;
          await file.write(chunk as Buffer);
        }
        await file.chmod(mode);
      } finally {
        await file.close();
      }
      await utimes(abs, mtime, mtime);
      return;
    }
    case "symlink": {
      const target = header.linkname ?? "";
      checkLinkTarget(state, rel, target, header.name);
      await prepareLeaf(state, rel, header.name);
      await symlink(target, abs);
      state.symlinks.set(rel, target);
      await lutimes(abs, mtime, mtime).catch(() => {});
      return void body.resume();
    }
    case "link": {
      const targetRel = checkedPath(state, header.linkname ?? "", "hard link target");
      await ensureParents(state, targetRel);
      const target = await lstatOrNull(path.join(state.root, targetRel));
      if (!target?.isFile()) {
        throw new UnsafeArchiveError(
          "link_escape",
          `hard link ${quote(header.name)} must point at a regular file extracted earlier, not ${quote(header.linkname ?? "")}`,
        );
      }
      await prepareLeaf(state, rel, header.name);
      await link(path.join(state.root, targetRel), abs);
      return void body.resume();
    }
    case "character-device":
    case "block-device":
    case "fifo":
      throw new UnsafeArchiveError(
        "special_file",
        `entry ${quote(header.name)} is a ${header.type}; build contexts may only hold files, directories and links`,
      );
    default:
      throw new UnsafeArchiveError("bad_entry", `entry ${quote(header.name)} has an unsupported type (${String(header.type)})`);
  }
}

/** Normalises an archive path; refuses absolute paths, `..`, NUL and excessive depth. */
function checkedPath(state: State, name: string, what: string): string {
  if (name.includes("\0")) throw new UnsafeArchiveError("bad_entry", `${what} name contains a NUL byte`);
  if (name.startsWith("/"))
    throw new UnsafeArchiveError("absolute_path", `${what} ${quote(name)} is an absolute path; archive paths must be relative`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes(".."))
    throw new UnsafeArchiveError("path_traversal", `${what} ${quote(name)} contains '..'; archive paths must stay inside the context`);
  if (parts.length > state.limits.maxDepth) {
    throw new UnsafeArchiveError(
      "too_deep",
      `${what} ${quote(name)} is ${parts.length} levels deep (limit: max depth ${state.limits.maxDepth})`,
    );
  }
  return parts.join("/");
}

/** Creates missing parent directories, refusing to go through a symlink or a file. */
async function ensureParents(state: State, rel: string): Promise<void> {
  const parts = rel.split("/").slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const dir = parts.slice(0, i).join("/");
    if (state.dirs.has(dir)) continue;
    const abs = path.join(state.root, dir);
    const info = await lstatOrNull(abs);
    if (info?.isSymbolicLink()) throw throughSymlink(rel);
    if (info && !info.isDirectory())
      throw new UnsafeArchiveError("bad_entry", `entry ${quote(rel)} needs ${quote(dir)} to be a directory, but it is a file`);
    if (!info) await mkdir(abs, { mode: 0o755 });
    state.dirs.add(dir);
  }
}

/** Makes room for a file or link at `rel`: parents exist, no directory or symlink is in the way. */
async function prepareLeaf(state: State, rel: string, name: string): Promise<void> {
  if (rel === "") throw new UnsafeArchiveError("bad_entry", `entry ${quote(name)} names the context root`);
  await ensureParents(state, rel);
  const abs = path.join(state.root, rel);
  const existing = await lstatOrNull(abs);
  if (!existing) return;
  if (existing.isDirectory()) throw new UnsafeArchiveError("bad_entry", `entry ${quote(name)} would replace a directory`);
  if (existing.isSymbolicLink()) {
    // Replacing a link is fine; writing into what it points at is not.
    state.symlinks.delete(rel);
  }
  await unlink(abs);
}

/**
 * Resolves a symlink's target the way the kernel would inside the extracted tree (following
 * the archive's own symlinks) and refuses it if it leaves the root or is absolute.
 */
function checkLinkTarget(state: State, rel: string, target: string, name = rel): void {
  if (target === "") throw new UnsafeArchiveError("bad_entry", `symlink ${quote(name)} has an empty target`);
  if (target.startsWith("/")) {
    throw new UnsafeArchiveError(
      "link_escape",
      `symlink ${quote(name)} points at the absolute path ${quote(target)}, outside the context; use a relative target`,
    );
  }
  const start = rel.split("/").slice(0, -1);
  if (resolveInside(state, start, target, 0) === null) {
    throw new UnsafeArchiveError("link_escape", `symlink ${quote(name)} -> ${quote(target)} resolves outside the context`);
  }
}

/** Walks `target` from the directory `dir` (components); null when it escapes the root. */
function resolveInside(state: State, dir: string[], target: string, depth: number): string[] | null {
  if (depth > 40) return null; // ELOOP
  if (target.startsWith("/")) return null;
  let stack = [...dir];
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (stack.length === 0) return null;
      stack.pop();
      continue;
    }
    stack.push(part);
    const linkTarget = state.symlinks.get(stack.join("/"));
    if (linkTarget !== undefined) {
      const resolved = resolveInside(state, stack.slice(0, -1), linkTarget, depth + 1);
      if (resolved === null) return null;
      stack = resolved;
    }
  }
  return stack;
}

async function lstatOrNull(abs: string) {
  try {
    return await lstat(abs);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

function throughSymlink(name: string): UnsafeArchiveError {
  return new UnsafeArchiveError("write_through_symlink", `entry ${quote(name)} would be written through a symlink`);
}

function quote(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
}
