/**
 * Reads a built image's root filesystem for its SBOM (decision 0024): a buildah working
 * container of the image, mounted (`buildah from` + `buildah mount`), walked for package
 * databases and metadata, then removed. Nothing in the image is trusted: no symbolic link is
 * followed (a link could point at the build host's files), files are read only when regular
 * and below a size cap, and the walk is bounded.
 */
import { lstat, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "./process.ts";
import { captureProcess } from "./process.ts";
import { type FoundPackage, parseApkInstalled, parseDistInfoMetadata, parseDpkgStatus, parsePackageJson } from "./sbom.ts";

// Bounds of the walk: a metadata file larger than this is skipped, and the walk stops after this many directories.
const MAX_FILE_BYTES = 32 * 1024 * 1024;
const MAX_DIRECTORIES = 200_000;
const SKIP = new Set(["proc", "sys", "dev", "run", "tmp"]);

/** Reads `rel` below `root` when every component is a real directory and the file a regular one; else null. */
export async function readInside(root: string, rel: string): Promise<string | null> {
  let at = root;
  const parts = rel.split("/").filter(Boolean);
  for (const [i, part] of parts.entries()) {
    at = path.join(at, part);
    const info = await lstat(at).catch(() => null);
    if (!info) return null;
    const last = i === parts.length - 1;
    if (last ? !info.isFile() || info.size > MAX_FILE_BYTES : !info.isDirectory()) return null;
  }
  return readFile(at, "utf8");
}

/** Every package recorded in the root filesystem at `root`. */
export async function collectPackages(root: string): Promise<FoundPackage[]> {
  const found: FoundPackage[] = [];
  const dpkg = await readInside(root, "var/lib/dpkg/status");
  if (dpkg !== null) found.push(...parseDpkgStatus(dpkg));
  const apk = await readInside(root, "lib/apk/db/installed");
  if (apk !== null) found.push(...parseApkInstalled(apk));
  // Breadth-first over real directories only (readdir's types come from lstat: links are not directories).
  const queue = [""];
  for (let visited = 0; queue.length > 0 && visited < MAX_DIRECTORIES; visited++) {
    const dir = queue.shift()!;
    const entries = await readdir(path.join(root, dir), { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory() || (dir === "" && SKIP.has(entry.name))) continue;
      const rel = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.name.endsWith(".dist-info")) {
        const text = await readInside(root, `${rel}/METADATA`);
        const p = text === null ? null : parseDistInfoMetadata(text, `/${rel}`);
        if (p) found.push(p);
        continue;
      }
      if (path.basename(dir) === "node_modules" || path.basename(path.dirname(dir)) === "node_modules") {
        const text = entry.name.startsWith("@") ? null : await readInside(root, `${rel}/package.json`);
        const p = text === null ? null : parsePackageJson(text, `/${rel}`);
        if (p) found.push(p);
      }
      queue.push(rel);
    }
  }
  return found;
}

/** The buildah commands that mount an image's root filesystem. */
export type RootfsCommands = { from(image: string): Command; mount(container: string): Command; remove(container: string): Command };

/** Mounts `image` in a working container, runs `use` on its root, and removes the container whatever happens. */
export async function withImageRootfs<T>(
  commands: RootfsCommands,
  image: string,
  use: (root: string) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const container = (await captureProcess(commands.from(image), signal)).trim().split("\n").pop()!;
  try {
    const root = (await captureProcess(commands.mount(container), signal)).trim();
    return await use(root);
  } finally {
    await captureProcess(commands.remove(container)).catch(() => undefined);
  }
}
