// The runner rebuilds a context from its manifest and blobs (decision 0022): byte-identical to
// what the SDK walked (every context-walk vector, plus modes and symlinks), through a
// per-workspace blob cache that downloads only what it lacks.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { encodeContextManifest } from "@kiln-build/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildContextManifest, type ResolvedContext } from "../../sdk/src/context-manifest.ts";
import { type ContextEntry, hashContext } from "../../sdk/src/context-tar.ts";
import { walkContext } from "../../sdk/src/context-walk.ts";
import { parseDockerignore } from "../../sdk/src/dockerignore.ts";
import { HashIndex } from "../../sdk/src/hash-index.ts";
import { BlobCache } from "../src/blob-cache.ts";
import { rebuildContext } from "../src/context-rebuild.ts";
import { JobFailure } from "../src/failure.ts";

type WalkCase = {
  name: string;
  tree: { path: string; type: "file" | "dir" }[];
  include_patterns?: string[];
  exclude_patterns?: string[];
  expected_listing?: string[];
  expect_error?: boolean;
  tree_note?: string;
  stacked_filters?: unknown;
  dockerignore_text?: string;
  dockerfile?: string;
};
const { cases } = JSON.parse(readFileSync(new URL("../../test/vectors/context_walk.json", import.meta.url), "utf8")) as {
  cases: WalkCase[];
};
const usable = cases.filter((c) => c.expected_listing && !c.expect_error && !c.stacked_filters && !c.tree_note?.includes("chmod 000"));

let dir: string;
let src: string;
let served: Map<string, Uint8Array>;
let requests: string[];
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "kiln-rebuild-"));
  src = path.join(dir, "src");
  await mkdir(src);
  served = new Map();
  requests = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fakeFetch = (async (input: URL | string) => {
  const digest = decodeURIComponent(String(input).split("/").at(-1)!);
  requests.push(digest);
  const bytes = served.get(digest);
  return bytes ? new Response(bytes as Uint8Array<ArrayBuffer>) : new Response(null, { status: 404 });
}) as typeof fetch;

async function collect(root: string, opts = {}): Promise<ContextEntry[]> {
  const out: ContextEntry[] = [];
  for await (const e of walkContext(root, opts)) out.push(e);
  return out;
}

/** What the SDK uploads for `entries`: the manifest and every blob, served by the fake orchestrator. */
async function upload(entries: ContextEntry[]): Promise<ResolvedContext> {
  const resolved = await buildContextManifest(entries, await HashIndex.open([src], path.join(dir, "sdk-cache")));
  served.set(resolved.digest, resolved.manifestBytes);
  for (const [digest, blob] of resolved.blobs) served.set(digest, readFileSync(blob.absPath));
  return resolved;
}

const limits = { maxBytes: 1 << 30, maxEntries: 10_000, maxDepth: 64 };
async function rebuild(resolved: { digest: string; sizeBytes: number }, out: string, workspaceId = "ws_a") {
  await mkdir(out, { recursive: true });
  return rebuildContext({ ...resolved, url: `http://kiln.test/v1/runner/contexts/${resolved.digest}` }, out, {
    token: "t",
    fetch: fakeFetch,
    attempts: 1,
    workspaceId,
    cache: new BlobCache(path.join(dir, "blob-cache"), 1 << 30),
    scratchDir: dir,
    limits,
  });
}

describe("rebuilt contexts are byte-identical to the SDK's walk", () => {
  it("covers the context-walk vectors", () => expect(usable.length).toBeGreaterThan(20));

  it.each(usable.map((c, i) => [`#${i} ${c.name}`, c] as const))("%s", async (_, c) => {
    for (const entry of c.tree) {
      const abs = path.join(src, entry.path);
      await mkdir(path.dirname(abs), { recursive: true });
      if (entry.type === "dir") await mkdir(abs, { recursive: true });
      else if (entry.path === ".dockerignore" && c.dockerignore_text !== undefined) await writeFile(abs, c.dockerignore_text);
      else if (entry.path === "Dockerfile" && c.dockerfile !== undefined) await writeFile(abs, c.dockerfile);
      else await writeFile(abs, `${entry.path}-contents`);
    }
    const excludePatterns = c.dockerignore_text !== undefined ? parseDockerignore(c.dockerignore_text) : (c.exclude_patterns ?? []);
    const entries = await collect(src, { includePatterns: c.include_patterns, excludePatterns });
    const resolved = await upload(entries);
    const out = path.join(dir, "out");
    await rebuild(resolved, out);
    const rebuilt = await collect(out);
    expect(rebuilt.map((e) => `${e.type} ${e.path}`)).toEqual(c.expected_listing);
    // The same tarball bytes: paths, types, modes, sizes and contents all agree.
    expect((await hashContext(rebuilt)).digest).toBe((await hashContext(entries)).digest);
  });

  it("keeps modes, symlinks, read-only directories and mtime 0", async () => {
    await mkdir(path.join(src, "bin"));
    await writeFile(path.join(src, "bin", "run.sh"), "#!/bin/sh\necho hi\n");
    await chmod(path.join(src, "bin", "run.sh"), 0o755);
    await writeFile(path.join(src, "same.txt"), "#!/bin/sh\necho hi\n");
    await mkdir(path.join(src, "locked"));
    await writeFile(path.join(src, "locked", "a"), "a");
    await chmod(path.join(src, "locked"), 0o555);
    await symlink("bin/run.sh", path.join(src, "link"));
    await symlink("../../etc/passwd", path.join(src, "escape"));
    const entries = await collect(src);
    const resolved = await upload(entries);
    const out = path.join(dir, "out");
    const stats = await rebuild(resolved, out);
    expect(stats.fetched).toBe(2); // same.txt shares run.sh's bytes: one blob, two modes
    const rebuilt = await collect(out);
    expect((await hashContext(rebuilt)).digest).toBe((await hashContext(entries)).digest);
    expect((await stat(path.join(out, "locked"))).mode & 0o7777).toBe(0o555);
    expect((await stat(path.join(out, "same.txt"))).mode & 0o7777).toBe(0o644);
    expect((await stat(path.join(out, "bin", "run.sh"))).mtimeMs).toBe(0);
    await chmod(path.join(src, "locked"), 0o755);
    await chmod(path.join(out, "locked"), 0o755);
  });
});

describe("the blob cache", () => {
  it("downloads only blobs the workspace's cache lacks, and nothing of another workspace's", async () => {
    for (let i = 0; i < 5; i++) await writeFile(path.join(src, `f${i}`), `file ${i}`);
    const first = await upload(await collect(src));
    expect((await rebuild(first, path.join(dir, "o1"))).fetched).toBe(5);
    await writeFile(path.join(src, "f3"), "changed");
    const second = await upload(await collect(src));
    requests = [];
    const stats = await rebuild(second, path.join(dir, "o2"));
    expect(stats).toMatchObject({ fetched: 1, cached: 4 });
    expect(requests).toEqual([second.digest, `sha256:${createHash("sha256").update("changed").digest("hex")}`]);
    // Workspace B's job gets none of A's cached bytes: it downloads every blob itself.
    expect((await rebuild(second, path.join(dir, "o3"), "ws_b")).fetched).toBe(5);
  });

  it("evicts least recently used entries beyond its size bound", async () => {
    const cache = new BlobCache(path.join(dir, "blob-cache"), 10);
    for (let i = 0; i < 3; i++) await writeFile(path.join(src, `f${i}`), "x".repeat(8) + i);
    await rebuild(await upload(await collect(src)), path.join(dir, "o1"));
    const { sizeBytes } = await cache.evict();
    expect(sizeBytes).toBeLessThanOrEqual(10);
  });
});

describe("refusals", () => {
  it("refuses a manifest that is not valid (a path escaping the context)", async () => {
    const bad = await encodeContextManifest({
      version: 1,
      entries: [{ path: "../x", type: "dir", mode: 0o755 }],
    } as never);
    served.set(bad.digest, bad.bytes);
    await expect(rebuild({ digest: bad.digest, sizeBytes: bad.bytes.byteLength }, path.join(dir, "o"))).rejects.toThrow(JobFailure);
  });

  it("refuses a blob whose bytes do not match its digest", async () => {
    await writeFile(path.join(src, "a"), "real");
    const resolved = await upload(await collect(src));
    served.set([...resolved.blobs.keys()][0]!, new TextEncoder().encode("fake"));
    await expect(rebuild(resolved, path.join(dir, "o"))).rejects.toThrow(/does not match its digest/);
  });

  it("refuses a context over the runner's entry limit", async () => {
    for (let i = 0; i < 3; i++) await writeFile(path.join(src, `f${i}`), `${i}`);
    const resolved = await upload(await collect(src));
    const out = path.join(dir, "o");
    await mkdir(out);
    const run = rebuildContext({ ...resolved, url: `http://kiln.test/v1/runner/contexts/${resolved.digest}` }, out, {
      token: "t",
      fetch: fakeFetch,
      attempts: 1,
      workspaceId: "ws_a",
      cache: new BlobCache(path.join(dir, "blob-cache"), 1 << 30),
      scratchDir: dir,
      limits: { ...limits, maxEntries: 2 },
    });
    await expect(run).rejects.toThrow(/3 entries, over the limit of 2/);
  });
});
