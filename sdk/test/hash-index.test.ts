// The local hash index (decision 0022): an unchanged tree costs a stat walk, a changed file is
// re-hashed, racily clean files are never trusted, and a corrupt, foreign or half-written
// index is ignored.
import { createHash } from "node:crypto";
import { lstatSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HashIndex, kilnCacheDir } from "../src/hash-index.ts";

let dir: string;
let root: string;
let cache: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "kiln-hash-index-"));
  root = path.join(dir, "ctx");
  cache = path.join(dir, "cache");
  await mkdir(root);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;
const past = new Date(Date.now() - 60_000);

/** Writes `text` with an mtime well before any index write (so it is not racily clean). */
async function put(name: string, text: string): Promise<string> {
  const file = path.join(root, name);
  await writeFile(file, text);
  await utimes(file, past, past);
  return file;
}

/** Hashes each file through a freshly opened index, saves it, and returns the index. */
async function pass(files: [string, string][]): Promise<HashIndex> {
  const index = await HashIndex.open([root], cache);
  for (const [file, text] of files) expect(index.digestOf(file, Buffer.byteLength(text), file)).toBe(sha(text));
  await index.save();
  return index;
}

describe("HashIndex", () => {
  it("answers an unchanged file from the index and re-hashes a changed one", async () => {
    const a = await put("a", "alpha");
    const b = await put("b", "beta");
    expect(
      (
        await pass([
          [a, "alpha"],
          [b, "beta"],
        ])
      ).stats,
    ).toEqual({ cached: 0, hashed: 2 });
    expect(
      (
        await pass([
          [a, "alpha"],
          [b, "beta"],
        ])
      ).stats,
    ).toEqual({ cached: 2, hashed: 0 });
    await put("b", "BETA"); // same size, new bytes: mtime/ctime differ
    expect(
      (
        await pass([
          [a, "alpha"],
          [b, "BETA"],
        ])
      ).stats,
    ).toEqual({ cached: 1, hashed: 1 });
  });

  it("re-hashes a racily clean file (mtime not older than the index), even with an unchanged stat tuple", async () => {
    const a = await put("a", "alpha");
    // The file's mtime is not older than the index written next: a write in the same clock
    // tick after hashing would leave the same tuple, so the cached hash cannot be trusted.
    const future = new Date(Date.now() + 60_000);
    await utimes(a, future, future);
    await pass([[a, "alpha"]]);
    expect((await pass([[a, "alpha"]])).stats).toEqual({ cached: 0, hashed: 1 });
    await utimes(a, past, past);
    await pass([[a, "alpha"]]);
    expect((await pass([[a, "alpha"]])).stats).toEqual({ cached: 1, hashed: 0 });
  });

  it("ignores a corrupt, truncated or foreign index", async () => {
    const a = await put("a", "alpha");
    const index = await pass([[a, "alpha"]]);
    const good = await readFile(index.file, "utf8");
    for (const bad of ["{not json", "null", "[]", good.slice(0, good.length / 2), good.replace(/"version":\d+/, '"version":99')]) {
      await writeFile(index.file, bad);
      expect((await pass([[a, "alpha"]])).stats).toEqual({ cached: 0, hashed: 1 });
    }
    // An index of another root, copied over this one's file, is not trusted either.
    const otherRoot = path.join(dir, "other");
    await mkdir(otherRoot);
    await writeFile(path.join(otherRoot, "a"), "alpha");
    const other = await HashIndex.open([otherRoot], cache);
    other.digestOf(path.join(otherRoot, "a"), 5, "a");
    await other.save();
    await writeFile(index.file, await readFile(other.file));
    expect((await pass([[a, "alpha"]])).stats).toEqual({ cached: 0, hashed: 1 });
  });

  it("survives a crash mid-write: the old index stays whole and a stray temporary file is ignored", async () => {
    const a = await put("a", "alpha");
    const index = await pass([[a, "alpha"]]);
    // A writer that died after writing half its temporary file never renamed it.
    await writeFile(`${index.file}.999.dead.tmp`, '{"version":3,"root":');
    expect((await pass([[a, "alpha"]])).stats).toEqual({ cached: 1, hashed: 0 });
    expect((await readdir(path.dirname(index.file))).filter((n) => !n.endsWith(".tmp"))).toHaveLength(1);
  });

  it("is safe under concurrent builds: every save leaves one complete index", async () => {
    const files: [string, string][] = [];
    for (let i = 0; i < 50; i++) files.push([await put(`f${i}`, `file ${i}`), `file ${i}`]);
    await Promise.all(Array.from({ length: 4 }, () => pass(files)));
    expect((await pass(files)).stats).toEqual({ cached: 50, hashed: 0 });
  });

  it("answers from the walk's own stamp, and still sees a same-size rewrite whose mtime was put back (ctime, inode)", async () => {
    const walked = (file: string) => lstatSync(file);
    const look = async (file: string, text: string) => {
      const index = await HashIndex.open([root], cache);
      expect(index.digestOf(file, Buffer.byteLength(text), file, walked(file))).toBe(sha(text));
      await index.save();
      return index.stats;
    };
    const a = await put("a", "alpha");
    expect(await look(a, "alpha")).toEqual({ cached: 0, hashed: 1 });
    expect(await look(a, "alpha")).toEqual({ cached: 1, hashed: 0 });
    // Same size, same mtime (put back, as `touch -r` or a restore does): only ctime tells.
    await writeFile(a, "ALPHA");
    await utimes(a, past, past);
    expect(await look(a, "ALPHA")).toEqual({ cached: 0, hashed: 1 });
    // Replaced by another file of the same size and mtime: a new inode (and ctime).
    const b = path.join(dir, "b");
    await writeFile(b, "omega");
    await utimes(b, past, past);
    await rename(b, a);
    expect(await look(a, "omega")).toEqual({ cached: 0, hashed: 1 });
    expect(await look(a, "omega")).toEqual({ cached: 1, hashed: 0 });
  });

  it("re-hashes a racily clean file even when the walk's stamp is unchanged", async () => {
    const a = await put("a", "alpha");
    const future = new Date(Date.now() + 60_000);
    await utimes(a, future, future);
    const stamp = lstatSync(a);
    for (let i = 0; i < 2; i++) {
      const index = await HashIndex.open([root], cache);
      expect(index.digestOf(a, 5, "a", stamp)).toBe(sha("alpha"));
      await index.save();
      expect(index.stats).toEqual({ cached: 0, hashed: 1 });
    }
  });

  it("does not trust a column of another length or with characters that are not base64, nor a stamp of another size", async () => {
    const a = await put("a", "alpha");
    const index = await pass([[a, "alpha"]]);
    const good = JSON.parse(await readFile(index.file, "utf8")) as { sha256: string; stamps: string; byteOrder: string };
    const corrupt = [
      { ...good, sha256: `${good.sha256.slice(0, 10)}*${good.sha256.slice(11)}` },
      { ...good, sha256: good.sha256.slice(4) },
      { ...good, stamps: `${good.stamps}AAAAAAAAAAA=` },
      { ...good, stamps: [1, 2, 3, 4, 5] },
      { ...good, byteOrder: good.byteOrder === "LE" ? "BE" : "LE" },
    ];
    for (const file of corrupt) {
      await writeFile(index.file, JSON.stringify(file));
      await utimes(index.file, new Date(), new Date());
      expect((await pass([[a, "alpha"]])).stats).toEqual({ cached: 0, hashed: 1 });
    }
    const again = await HashIndex.open([root], cache);
    expect(() => again.digestOf(a, 4, "a", lstatSync(a))).toThrow(/file modified during build/);
  });

  it("answers files from the index whatever order they are asked in, and keeps the walk's order", async () => {
    const files: [string, string][] = [];
    for (let i = 0; i < 6; i++) files.push([await put(`f${i}`, `file ${i}`), `file ${i}`]);
    await pass(files);
    // A file added in the middle, and the rest asked for backwards: every other one is still cached.
    const added: [string, string] = [await put("f2b", "new"), "new"];
    const reordered = [...files.slice(0, 3), added, ...files.slice(3)].reverse();
    expect((await pass(reordered)).stats).toEqual({ cached: 6, hashed: 1 });
    const saved = JSON.parse(await readFile((await HashIndex.open([root], cache)).file, "utf8")) as { paths: string[] };
    expect(saved.paths).toEqual(reordered.map(([file]) => file));
    expect((await pass(reordered)).stats).toEqual({ cached: 7, hashed: 0 });
  });

  it("lives in KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln", () => {
    expect(kilnCacheDir({ KILN_CACHE_DIR: "/c", XDG_CACHE_HOME: "/x" })).toBe("/c");
    expect(kilnCacheDir({ XDG_CACHE_HOME: "/x" })).toBe(path.join("/x", "kiln"));
    expect(kilnCacheDir({})).toBe(path.join(os.homedir(), ".cache", "kiln"));
  });
});
