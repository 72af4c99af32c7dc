// Hostile build contexts: every extraction safety rule has a tarball that breaks it, and
// nothing may be written outside the extraction root.
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { collectContextEntries } from "../../sdk/src/context.ts";
import { DEFAULT_EXTRACT_LIMITS, type ExtractLimits, extractTar, extractTarFile, UnsafeArchiveError } from "../src/safe-extract.ts";
import { contextTar } from "./helpers/jobs.ts";

type Entry = {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
  mtime?: Date;
};

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of p) chunks.push(chunk as Buffer);
  })();
  for (const e of entries) {
    const { body, ...header } = e;
    const opts = {
      type: "file" as const,
      mode: 0o644,
      ...header,
      ...(header.type === "character-device" || header.type === "block-device" ? { devmajor: 1, devminor: 3 } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const callback = (err?: Error | null) => (err ? reject(err) : resolve());
      if (opts.type === "file") p.entry(opts, body ?? "", callback);
      else p.entry(opts, callback);
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

let parent: string;
let root: string;
beforeEach(async () => {
  parent = await mkdtemp(path.join(tmpdir(), "kiln-extract-"));
  root = path.join(parent, "root");
  await mkdir(root);
});
afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

async function extract(entries: Entry[], limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS) {
  return extractTar(Readable.from([await tarOf(entries)]), root, limits);
}

async function expectRefused(entries: Entry[], code: UnsafeArchiveError["code"], limits?: ExtractLimits): Promise<UnsafeArchiveError> {
  const error = await extract(entries, limits).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UnsafeArchiveError);
  expect((error as UnsafeArchiveError).code).toBe(code);
  // Nothing escaped: the parent holds only the root.
  expect(await readdir(parent)).toEqual(["root"]);
  return error as UnsafeArchiveError;
}

describe("safe extraction refuses", () => {
  it("absolute paths", async () => {
    const error = await expectRefused([{ name: "/etc/kiln-evil" }], "absolute_path");
    expect(error.message).toContain("/etc/kiln-evil");
  });

  it("'..' components, even ones that would stay inside", async () => {
    await expectRefused([{ name: "../evil" }], "path_traversal");
    await expectRefused([{ name: "a/../../evil" }], "path_traversal");
    await expectRefused([{ name: "a/b/../c" }], "path_traversal");
  });

  it("symlinks with absolute targets", async () => {
    await expectRefused([{ name: "etc", type: "symlink", linkname: "/etc" }], "link_escape");
  });

  it("symlinks whose relative target leaves the root", async () => {
    await expectRefused(
      [
        { name: "dir", type: "directory" },
        { name: "dir/up", type: "symlink", linkname: "../../outside" },
      ],
      "link_escape",
    );
  });

  it("symlinks that escape through another symlink of the archive, in either order", async () => {
    await expectRefused(
      [
        { name: "s", type: "symlink", linkname: "." },
        { name: "t", type: "symlink", linkname: "s/.." },
      ],
      "link_escape",
    );
    await rm(root, { recursive: true });
    await mkdir(root);
    // `t` looks harmless when it arrives (s does not exist yet); the final check catches it.
    await expectRefused(
      [
        { name: "t", type: "symlink", linkname: "s/.." },
        { name: "s", type: "symlink", linkname: "." },
      ],
      "link_escape",
    );
  });

  it("hard links out of the root or to something that is not an extracted file", async () => {
    await expectRefused([{ name: "h", type: "link", linkname: "../outside" }], "path_traversal");
    await expectRefused([{ name: "h", type: "link", linkname: "/etc/passwd" }], "absolute_path");
    await expectRefused([{ name: "h", type: "link", linkname: "missing" }], "link_escape");
    await expectRefused(
      [
        { name: "d", type: "directory" },
        { name: "h", type: "link", linkname: "d" },
      ],
      "link_escape",
    );
  });

  it("writing through a symlink, even one pointing inside", async () => {
    await expectRefused(
      [
        { name: "real", type: "directory" },
        { name: "alias", type: "symlink", linkname: "real" },
        { name: "alias/file", body: "x" },
      ],
      "write_through_symlink",
    );
    expect(await readdir(path.join(root, "real"))).toEqual([]);
    await rm(root, { recursive: true });
    await mkdir(root);
    await expectRefused(
      [
        { name: "real", type: "directory" },
        { name: "alias", type: "symlink", linkname: "real" },
        { name: "alias", type: "directory" },
      ],
      "write_through_symlink",
    );
  });

  it("device and FIFO entries", async () => {
    await expectRefused([{ name: "null", type: "character-device" }], "special_file");
    await expectRefused([{ name: "sda", type: "block-device" }], "special_file");
    await expectRefused([{ name: "pipe", type: "fifo" }], "special_file");
  });

  it("archives over the total size limit, including a gzip bomb", async () => {
    const limits = { ...DEFAULT_EXTRACT_LIMITS, maxBytes: 1000 };
    await expectRefused(
      [
        { name: "a", body: Buffer.alloc(600) },
        { name: "b", body: Buffer.alloc(600) },
      ],
      "too_large",
      limits,
    );
    const bomb = gzipSync(await tarOf([{ name: "zeros", body: Buffer.alloc(8 * 1024 * 1024) }]));
    expect(bomb.length).toBeLessThan(64 * 1024);
    // Partial output of a refused archive is the caller's to delete (the job's work dir goes).
    await rm(root, { recursive: true });
    await mkdir(root);
    await writeFile(path.join(root, "..bomb.tar.gz"), bomb);
    const error = await extractTarFile(path.join(root, "..bomb.tar.gz"), root, { ...DEFAULT_EXTRACT_LIMITS, maxBytes: 1024 * 1024 }).catch(
      (e: unknown) => e,
    );
    expect((error as UnsafeArchiveError).code).toBe("too_large");
    expect((await readdir(root)).filter((n) => n !== "..bomb.tar.gz")).toEqual([]);
  });

  it("archives with too many entries", async () => {
    const entries = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}` }));
    const error = await expectRefused(entries, "too_many_entries", { ...DEFAULT_EXTRACT_LIMITS, maxEntries: 10 });
    expect(error.message).toContain("max entries");
  });

  it("paths deeper than the limit", async () => {
    const error = await expectRefused([{ name: "a/b/c/d/e/f" }], "too_deep", { ...DEFAULT_EXTRACT_LIMITS, maxDepth: 5 });
    expect(error.message).toContain("max depth 5");
  });
});

describe("safe extraction keeps", () => {
  it("files, directories, inside links, hard links, modes and times", async () => {
    const mtime = new Date("2024-01-02T03:04:05Z");
    const stats = await extract([
      { name: "bin", type: "directory", mode: 0o755, mtime },
      { name: "bin/tool", body: "#!/bin/sh\necho hi\n", mode: 0o755, mtime },
      { name: "bin/alias", type: "symlink", linkname: "tool" },
      { name: "lib/deep/file.txt", body: "deep", mode: 0o600 },
      { name: "lib/up", type: "symlink", linkname: "../bin/tool" },
      { name: "hard", type: "link", linkname: "bin/tool" },
      { name: "./dot/slash.txt", body: "normalised" },
    ]);
    expect(stats.entries).toBe(7);
    expect((await stat(path.join(root, "bin/tool"))).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(root, "lib/deep/file.txt"))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(root, "bin/tool"))).mtime.toISOString()).toBe(mtime.toISOString());
    expect((await stat(path.join(root, "bin"))).mtime.toISOString()).toBe(mtime.toISOString());
    expect(await readlink(path.join(root, "bin/alias"))).toBe("tool");
    expect(await readlink(path.join(root, "lib/up"))).toBe("../bin/tool");
    expect((await stat(path.join(root, "hard"))).ino).toBe((await stat(path.join(root, "bin/tool"))).ino);
    expect(await readFile(path.join(root, "dot/slash.txt"), "utf8")).toBe("normalised");
  });

  it("replaces a symlink by a later file of the same name without touching the link's target", async () => {
    await extract([
      { name: "target.txt", body: "original" },
      { name: "link", type: "symlink", linkname: "target.txt" },
      { name: "link", body: "replacement" },
    ]);
    expect(await readFile(path.join(root, "target.txt"), "utf8")).toBe("original");
    expect((await lstat(path.join(root, "link"))).isFile()).toBe(true);
  });

  it("round-trips the SDK's deterministic context tarball", async () => {
    const src = path.join(parent, "src");
    await mkdir(path.join(src, "pkg"), { recursive: true });
    await writeFile(path.join(src, "pkg", "a.py"), "print('a')\n");
    await writeFile(path.join(src, "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
    const sources = [{ kind: "dir" as const, localPath: src, archivePath: "app", ignore: [] }];
    const tar = await contextTar(sources);
    await extractTar(Readable.from([tar]), root);
    expect(await readFile(path.join(root, "app/pkg/a.py"), "utf8")).toBe("print('a')\n");
    expect((await stat(path.join(root, "app/run.sh"))).mode & 0o777).toBe(0o755);
    expect((await collectContextEntries(sources)).map((e) => e.path)).toEqual(["app", "app/pkg", "app/pkg/a.py", "app/run.sh"]);
  });
});
