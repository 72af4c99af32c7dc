/**
 * The runner's local cache of context file blobs (docs/decisions/0022). One directory per
 * workspace, so a job can only ever be given bytes its own workspace uploaded (the server
 * enforces that for downloads; a shared cache would let a job that names another workspace's
 * digest read the file without ever having had it). Entries are keyed by digest and mode and
 * written once with the context's fixed mtime (0), verified by digest before they enter, then
 * hard-linked into a job's context: no copy, and the link leaves nothing to fix up. A link
 * changes the inode's ctime, which is therefore the entry's last use, and eviction drops the
 * least recently used entries once the cache is over its size bound (a context holding a link
 * keeps its file; only the cache's name goes).
 */
import { createHash } from "node:crypto";
import { chmod, copyFile, link, mkdir, readdir, rename, rm, stat, utimes } from "node:fs/promises";
import path from "node:path";

const EPOCH = new Date(0);

/** A workspace-scoped, size-bounded cache of verified blobs. */
export class BlobCache {
  readonly root: string;
  readonly maxBytes: number;

  /** `root` holds every workspace's directory; `maxBytes` bounds them together. */
  constructor(root: string, maxBytes: number) {
    this.root = root;
    this.maxBytes = maxBytes;
  }

  /** The directory of one workspace's blobs (named by a hash: workspace ids never become paths). */
  dirOf(workspaceId: string): string {
    return path.join(this.root, createHash("sha256").update(workspaceId).digest("hex").slice(0, 32));
  }

  #entry(workspaceId: string, digest: string, mode: number): string {
    return path.join(this.dirOf(workspaceId), `${digest.slice("sha256:".length)}.${mode.toString(8)}`);
  }

  /** The digests the workspace has cached (with any mode), read in one directory listing. */
  async cachedDigests(workspaceId: string): Promise<Set<string>> {
    const names = await readdir(this.dirOf(workspaceId)).catch(() => [] as string[]);
    return new Set(names.filter((n) => !n.endsWith(".tmp")).map((n) => `sha256:${n.slice(0, n.indexOf("."))}`));
  }

  /** Whether the workspace has `digest` cached with any mode, and the path of one such entry. */
  async find(workspaceId: string, digest: string): Promise<string | null> {
    const hex = digest.slice("sha256:".length);
    const names = await readdir(this.dirOf(workspaceId)).catch(() => [] as string[]);
    const name = names.find((n) => n.startsWith(`${hex}.`) && !n.endsWith(".tmp"));
    return name ? path.join(this.dirOf(workspaceId), name) : null;
  }

  /** A fresh temporary path in the workspace's directory to download a blob to. */
  async tempPath(workspaceId: string): Promise<string> {
    await mkdir(this.dirOf(workspaceId), { recursive: true, mode: 0o700 });
    return path.join(this.dirOf(workspaceId), `${crypto.randomUUID()}.tmp`);
  }

  /** Takes a downloaded, digest-verified file into the cache as `digest` with mode `mode`. */
  async admit(workspaceId: string, digest: string, mode: number, file: string): Promise<void> {
    await chmod(file, mode);
    await utimes(file, EPOCH, EPOCH);
    // Atomic: a concurrent job sees no entry or a complete one (both hold the same bytes).
    await rename(file, this.#entry(workspaceId, digest, mode));
  }

  /**
   * Places the cached blob at `dest` with `mode`: a hard link to the entry for that mode, made
   * from another mode's entry (a copy) when needed. Returns false when the blob is not cached.
   */
  async place(workspaceId: string, digest: string, mode: number, dest: string): Promise<boolean> {
    const entry = this.#entry(workspaceId, digest, mode);
    if (await tryLink(entry, dest)) return true;
    const other = await this.find(workspaceId, digest);
    if (!other) return false;
    const tmp = await this.tempPath(workspaceId);
    await copyFile(other, tmp);
    await this.admit(workspaceId, digest, mode, tmp);
    if (await tryLink(entry, dest)) return true;
    // Another filesystem (EXDEV) or a racing eviction: a private copy is always right.
    await copyFile(other, dest);
    await chmod(dest, mode);
    await utimes(dest, EPOCH, EPOCH);
    return true;
  }

  /** Removes least recently used entries (oldest ctime) until the cache holds at most `maxBytes`. */
  async evict(): Promise<{ removed: number; sizeBytes: number }> {
    const entries: { file: string; size: number; used: number }[] = [];
    for (const dir of await readdir(this.root).catch(() => [] as string[])) {
      for (const name of await readdir(path.join(this.root, dir)).catch(() => [] as string[])) {
        if (name.endsWith(".tmp")) continue;
        const file = path.join(this.root, dir, name);
        const info = await stat(file).catch(() => null);
        if (info?.isFile()) entries.push({ file, size: info.size, used: info.ctimeMs });
      }
    }
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    let removed = 0;
    for (const entry of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      await rm(entry.file, { force: true });
      total -= entry.size;
      removed++;
    }
    return { removed, sizeBytes: total };
  }
}

async function tryLink(entry: string, dest: string): Promise<boolean> {
  try {
    await link(entry, dest);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EXDEV" || code === "EPERM" || code === "EMLINK") return false;
    throw error;
  }
}
