import fs, { promises as fsp, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ContextWalkEntry, contextIncludes, type WalkContextOptions, walkContext, walkContextSlices } from "../src/context-walk.ts";
import { parseDockerignore } from "../src/dockerignore.ts";
import { InvalidError, NotFoundError } from "../src/errors.ts";
import { FilePatternMatcher } from "../src/pattern-matcher.ts";

type WalkCase = {
  name: string;
  tree: { path: string; type: "file" | "dir" }[];
  include_patterns: string[];
  exclude_patterns: string[] | null;
  stacked_filters?: { exclude_patterns: string[] }[];
  tree_note?: string;
  expected_listing?: string[];
  expect_error?: boolean;
  error_contains?: string;
  open_expectations?: Record<string, "ok" | "not-exist">;
  dockerignore_text?: string;
  dockerfile?: string;
};

const { cases } = JSON.parse(readFileSync(new URL("../../test/vectors/context_walk.json", import.meta.url), "utf8")) as {
  cases: WalkCase[];
};

const named = cases.map((c, i) => {
  const patterns = c.stacked_filters
    ? `stacked ${JSON.stringify(c.stacked_filters)}`
    : `include ${JSON.stringify(c.include_patterns)} exclude ${JSON.stringify(c.exclude_patterns)}`;
  return [`#${i} ${c.name} ${patterns}`, c] as const;
});

async function collect(gen: AsyncIterable<ContextWalkEntry>): Promise<ContextWalkEntry[]> {
  const out: ContextWalkEntry[] = [];
  for await (const e of gen) out.push(e);
  return out;
}

const listing = (entries: ContextWalkEntry[]) => entries.map((e) => `${e.type} ${e.path}`);

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "kiln-walk-"));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await chmod(root, 0o755).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

async function makeTree(c: WalkCase): Promise<void> {
  for (const entry of c.tree) {
    const abs = path.join(root, entry.path);
    await mkdir(path.dirname(abs), { recursive: true });
    if (entry.type === "dir") await mkdir(abs, { recursive: true });
    else if (entry.path === ".dockerignore" && c.dockerignore_text !== undefined) await writeFile(abs, c.dockerignore_text);
    else if (entry.path === "Dockerfile" && c.dockerfile !== undefined) await writeFile(abs, c.dockerfile);
    else await writeFile(abs, `${entry.path}-contents`);
  }
}

/**
 * Makes `rel` unreadable. As root, chmod 000 does not stop readdir, so the EACCES the vector
 * relies on is injected for that directory instead; the walker cannot tell the difference.
 */
async function makeUnreadable(rel: string): Promise<() => Promise<void>> {
  const abs = path.join(root, rel);
  await chmod(abs, 0o000);
  if (process.getuid?.() === 0) {
    const real = await fsp.realpath(root);
    const target = path.join(real, rel);
    const original = fs.readdirSync.bind(fs);
    vi.spyOn(fs, "readdirSync").mockImplementation(((p: string, opts: unknown) => {
      if (p === target) throw Object.assign(new Error(`EACCES: permission denied, scandir '${p}'`), { code: "EACCES" });
      return (original as (p: string, o: unknown) => unknown)(p, opts);
    }) as typeof fs.readdirSync);
  }
  return () => chmod(abs, 0o755);
}

function optionsFor(c: WalkCase): WalkContextOptions {
  if (c.stacked_filters) {
    // Two FilterFS layers: the inner one is the pattern filter, the outer one the `ignore` layer.
    expect(c.stacked_filters).toHaveLength(2);
    const [inner, outer] = c.stacked_filters;
    return { excludePatterns: inner?.exclude_patterns ?? [], ignore: new FilePatternMatcher(...(outer?.exclude_patterns ?? [])) };
  }
  const excludePatterns = c.dockerignore_text !== undefined ? parseDockerignore(c.dockerignore_text) : (c.exclude_patterns ?? []);
  return { includePatterns: c.include_patterns, excludePatterns };
}

describe("fsutil / BuildKit context-walk vectors", () => {
  it("covers every record", () => {
    expect(named).toHaveLength(35);
    for (const [, c] of named) {
      expect(c.expected_listing !== undefined || c.expect_error === true || c.open_expectations !== undefined).toBe(true);
    }
  });

  it.each(named)("%s", async (_, c) => {
    await makeTree(c);
    const restore = c.tree_note?.includes("chmod 000") ? await makeUnreadable("foo/bar") : async () => {};
    try {
      const opts = optionsFor(c);
      if (c.expect_error) {
        if (c.error_contains === undefined) {
          expect(() => walkContext(root, opts)).toThrow(InvalidError);
        } else {
          await expect(collect(walkContext(root, opts))).rejects.toThrow(c.error_contains);
        }
        return;
      }
      const entries = await collect(walkContext(root, opts));
      if (c.expected_listing !== undefined) expect(listing(entries)).toEqual(c.expected_listing);
      for (const [p, expected] of Object.entries(c.open_expectations ?? {})) {
        expect(contextIncludes(p, opts)).toBe(expected === "ok");
        expect(entries.some((e) => e.path === p)).toBe(expected === "ok");
      }
    } finally {
      await restore();
    }
  });
});

describe("walkContext", () => {
  it("reports symlinks without following them, with modes and sizes", async () => {
    await mkdir(path.join(root, "real"));
    await writeFile(path.join(root, "real/f.sh"), "#!/bin/sh\n");
    await chmod(path.join(root, "real/f.sh"), 0o4755);
    await symlink("real", path.join(root, "link-dir"));
    await symlink("/etc/passwd", path.join(root, "link-file"));
    const entries = await collect(walkContext(root));
    expect(listing(entries)).toEqual(["symlink link-dir", "symlink link-file", "dir real", "file real/f.sh"]);
    const [linkDir, linkFile, dir, file] = entries;
    expect(linkDir).toMatchObject({ linkTarget: "real", size: 4 });
    expect(linkFile).toMatchObject({ linkTarget: "/etc/passwd" });
    expect(dir).toMatchObject({ size: 0, mode: expect.any(Number) });
    expect(file).toMatchObject({ mode: 0o4755, size: 10, absPath: path.join(await fsp.realpath(root), "real/f.sh") });
    expect(file?.linkTarget).toBeUndefined();
  });

  it("sorts names by code point at every level, as Go does", async () => {
    const names = ["b", "B", "a.txt", "a", "é", "\u{1F600}", "\uFF5E", "a-b"];
    for (const n of names) await writeFile(path.join(root, n), "");
    await mkdir(path.join(root, "a.d"));
    await writeFile(path.join(root, "a.d/z"), "");
    const paths = (await collect(walkContext(root))).map((e) => e.path);
    expect(paths).toEqual(["B", "a", "a-b", "a.d", "a.d/z", "a.txt", "b", "é", "\uFF5E", "\u{1F600}"]);
  });

  it("prunes excluded directories only when nothing can be re-included", async () => {
    await mkdir(path.join(root, "node_modules/pkg"), { recursive: true });
    await writeFile(path.join(root, "node_modules/pkg/index.js"), "");
    await writeFile(path.join(root, "keep.txt"), "");
    const real = await fsp.realpath(root);
    const spy = vi.spyOn(fs, "readdirSync");
    const read = () => spy.mock.calls.map((call) => path.relative(real, String(call[0])));
    expect(listing(await collect(walkContext(root, { excludePatterns: ["node_modules"] })))).toEqual(["file keep.txt"]);
    expect(read()).not.toContain("node_modules");
    spy.mockClear();
    const withException = await collect(walkContext(root, { excludePatterns: ["node_modules", "!**/index.js"] }));
    expect(listing(withException)).toEqual(["file keep.txt", "dir node_modules", "dir node_modules/pkg", "file node_modules/pkg/index.js"]);
    expect(read()).toContain("node_modules/pkg");
  });

  it("applies a Modal-style ignore on top of the patterns", async () => {
    await mkdir(path.join(root, "src/sub"), { recursive: true });
    await writeFile(path.join(root, "src/a.py"), "");
    await writeFile(path.join(root, "src/b.txt"), "");
    await writeFile(path.join(root, "src/sub/c.py"), "");
    await writeFile(path.join(root, "top.txt"), "");
    const nonPython = new FilePatternMatcher("**/*.py").invert();
    expect(listing(await collect(walkContext(root, { ignore: nonPython })))).toEqual([
      "dir src",
      "file src/a.py",
      "dir src/sub",
      "file src/sub/c.py",
    ]);
    expect(listing(await collect(walkContext(root, { ignore: ["src"] })))).toEqual(["file top.txt"]);
    expect(listing(await collect(walkContext(root, { ignore: (p) => p.endsWith(".txt") })))).toEqual([
      "dir src",
      "file src/a.py",
      "dir src/sub",
      "file src/sub/c.py",
    ]);
    // The ignore layer cannot bring back what the patterns dropped...
    expect(listing(await collect(walkContext(root, { excludePatterns: ["src"], ignore: ["!src/a.py"] })))).toEqual(["file top.txt"]);
    // ...and lists a directory the patterns re-entered even when it ignores the child (fsutil stacking).
    expect(
      listing(
        await collect(walkContext(root, { excludePatterns: ["src", "!src/a.py"], ignore: (p) => p === "src/a.py" || p === "top.txt" })),
      ),
    ).toEqual(["dir src"]);
  });

  it("combines include patterns with excludes", async () => {
    await mkdir(path.join(root, "app/tests"), { recursive: true });
    await writeFile(path.join(root, "app/main.py"), "");
    await writeFile(path.join(root, "app/tests/t.py"), "");
    await writeFile(path.join(root, "README.md"), "");
    const entries = await collect(walkContext(root, { includePatterns: ["app"], excludePatterns: ["**/tests"] }));
    expect(listing(entries)).toEqual(["dir app", "file app/main.py"]);
    expect(contextIncludes("app/tests/t.py", { includePatterns: ["app"], excludePatterns: ["**/tests"] })).toBe(false);
    expect(contextIncludes("README.md", { includePatterns: ["app"] })).toBe(false);
  });

  it("validates options before touching the file system", async () => {
    expect(() => walkContext(path.join(root, "missing"), { includePatterns: ["[z-a]"] })).toThrow(/invalid include patterns/);
    expect(() => walkContext(root, { followSymlinks: true as unknown as false })).toThrow(InvalidError);
    await expect(collect(walkContext(path.join(root, "missing")))).rejects.toThrow(NotFoundError);
    await writeFile(path.join(root, "file"), "");
    await expect(collect(walkContext(path.join(root, "file")))).rejects.toThrow(InvalidError);
  });

  it("gives the same entries in slices as the async walk, each file stamped with its lstat", async () => {
    await mkdir(path.join(root, "a/b"), { recursive: true });
    await writeFile(path.join(root, "a/b/f"), "12345");
    await writeFile(path.join(root, "top"), "");
    await symlink("a/b/f", path.join(root, "link"));
    const opts = { excludePatterns: ["ignored"] };
    await writeFile(path.join(root, "ignored"), "x");
    const sliced = [...walkContextSlices(root, opts)].flat();
    const walked = await collect(walkContext(root, opts));
    expect(sliced.map((e) => `${e.type} ${e.path}`)).toEqual(listing(walked));
    expect(listing(walked)).toEqual(["dir a", "dir a/b", "file a/b/f", "symlink link", "file top"]);
    const file = walked.find((e) => e.path === "a/b/f")!;
    const st = await fsp.lstat(file.absPath);
    expect(file.stamp).toEqual({ size: 5, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode });
    expect(walked.filter((e) => e.type !== "file").every((e) => e.stamp === undefined)).toBe(true);
  });

  it("walks a 10,000-file tree in order", async () => {
    for (let d = 0; d < 100; d++) {
      const dir = path.join(root, `d${String(d).padStart(3, "0")}`);
      await mkdir(dir);
      await Promise.all(Array.from({ length: 100 }, (_, f) => writeFile(path.join(dir, `f${f}`), "x")));
    }
    const started = performance.now();
    const entries = await collect(walkContext(root, { excludePatterns: ["d000", "**/f99"] }));
    const elapsed = performance.now() - started;
    expect(entries.filter((e) => e.type === "file")).toHaveLength(99 * 99);
    expect(entries.filter((e) => e.type === "dir")).toHaveLength(99);
    const paths = entries.map((e) => e.path);
    const sorted = [...paths].sort((a, b) => {
      const [x, y] = [a.split("/"), b.split("/")];
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as string) < (y[i] as string) ? -1 : 1;
      return x.length - y.length;
    });
    expect(paths).toEqual(sorted);
    expect(elapsed).toBeLessThan(20_000);
  });
});
