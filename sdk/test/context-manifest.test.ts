// Per-file contexts (decision 0022) seen from the SDK: the layer key covers the manifest, so
// a rename or a mode change or a symlink retarget changes the key, while the upload sends
// only the blobs the server lacks (a one-file change: one blob; a rename: none).
import { chmod, mkdir, mkdtemp, rename, rm, symlink, unlink, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { decodeBlobBatch, decodeContextManifest, manifestBlobs } from "@kiln-build/protocol";
import canonicalize from "canonicalize";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KilnClient } from "../src/client.ts";
import { resolveContext } from "../src/context.ts";
import { uploadContexts } from "../src/context-upload.ts";
import { Image } from "../src/image.ts";

let dir: string;
let app: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "kiln-manifest-"));
  app = path.join(dir, "app");
  await mkdir(app);
  for (let i = 0; i < 10; i++) await writeFile(path.join(app, `f${i}.txt`), `file number ${i}\n`);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const keyOf = async () => {
  const { layers } = await Image.fromRegistry("busybox").addLocalDir(app, "/app", { copy: true }).describe();
  return layers.at(-1)!.key;
};
const resolve = async () =>
  (await resolveContext([{ kind: "dir", localPath: app, archivePath: "app", ignore: [] }], path.join(dir, "cache")))!;

/** A server that keeps what it was sent, answering like the Worker's context routes. */
function server() {
  const stored = new Set<string>();
  const blobsSent: string[] = [];
  const fetch = (async (input: URL | string, init?: RequestInit) => {
    const url = new URL(String(input));
    const body = new Uint8Array(await new Response(init?.body).arrayBuffer());
    if (url.pathname === "/v1/contexts/missing") {
      const { digests } = JSON.parse(new TextDecoder().decode(body)) as { digests: string[] };
      return Response.json({ missing: digests.filter((d) => !stored.has(d)) });
    }
    if (url.pathname.startsWith("/v1/contexts/manifests/")) {
      stored.add(url.pathname.split("/").at(-1)!);
      const manifest = decodeContextManifest(body)!;
      return Response.json({ missing: manifestBlobs(manifest).flatMap((b) => (stored.has(b.digest) ? [] : [b.digest])) }, { status: 201 });
    }
    if (url.pathname === "/v1/contexts/blobs") {
      const batch = decodeBlobBatch(body);
      if (!batch.ok) return Response.json({ error: { code: "invalid_batch", message: batch.message } }, { status: 400 });
      for (const b of batch.blobs) {
        stored.add(b.digest);
        blobsSent.push(b.digest);
      }
      return Response.json({ stored: [] }, { status: 201 });
    }
    return Response.json({ error: { code: "not_found", message: url.pathname } }, { status: 404 });
  }) as typeof globalThis.fetch;
  return { client: new KilnClient({ serverUrl: "http://kiln.test", token: "t", fetch, maxRetries: 0 }), blobsSent };
}

describe("per-file contexts", () => {
  it("a context changed in one file uploads that one blob (and the new manifest)", async () => {
    const { client, blobsSent } = server();
    const first = await uploadContexts(client, [await resolve()]);
    expect(blobsSent).toHaveLength(10);
    expect(first.uploaded).toHaveLength(11);
    await writeFile(path.join(app, "f3.txt"), "changed\n");
    const second = await resolve();
    const report = await uploadContexts(client, [second]);
    expect(blobsSent).toHaveLength(11);
    expect(report.uploaded).toEqual([second.digest, [...second.blobs.keys()][3]]);
    expect(report.bytesUploaded).toBe(second.sizeBytes + "changed\n".length);
  });

  it("a renamed file uploads no blob and gets a new key", async () => {
    const { client, blobsSent } = server();
    await uploadContexts(client, [await resolve()]);
    const before = await keyOf();
    await rename(path.join(app, "f1.txt"), path.join(app, "renamed.txt"));
    const report = await uploadContexts(client, [await resolve()]);
    expect(blobsSent).toHaveLength(10);
    expect(report.uploaded).toHaveLength(1); // the manifest only
    expect(await keyOf()).not.toBe(before);
  });

  it("a mode change or a symlink retarget changes the key; nothing else does", async () => {
    await symlink("f1.txt", path.join(app, "link"));
    const base = await keyOf();
    expect(await keyOf()).toBe(base);
    await chmod(path.join(app, "f2.txt"), 0o755);
    const modeChanged = await keyOf();
    expect(modeChanged).not.toBe(base);
    await unlink(path.join(app, "link"));
    await symlink("f2.txt", path.join(app, "link"));
    expect(await keyOf()).not.toBe(modeChanged);
  });

  it("a re-check answered by the hash index gives the manifest a fresh walk gives, byte for byte", async () => {
    await mkdir(path.join(app, "sub/é"), { recursive: true });
    await writeFile(path.join(app, "sub/é/\u{1F600}.txt"), "emoji\n");
    await writeFile(path.join(app, "sub/empty"), "");
    await writeFile(path.join(app, "sub/run.sh"), "#!/bin/sh\n");
    await chmod(path.join(app, "sub/run.sh"), 0o755);
    await symlink("../f1.txt", path.join(app, "sub/link"));
    const past = new Date(Date.now() - 60_000);
    for (const f of ["f1.txt", "sub/empty", "sub/run.sh", "sub/é/\u{1F600}.txt"]) await utimes(path.join(app, f), past, past);
    const sources = [{ kind: "dir" as const, localPath: app, archivePath: "app", ignore: [] }];
    const first = (await resolveContext(sources, path.join(dir, "cache")))!;
    const cached = (await resolveContext(sources, path.join(dir, "cache")))!;
    const fresh = (await resolveContext(sources, path.join(dir, "other-cache")))!;
    expect(Buffer.from(cached.manifestBytes)).toEqual(Buffer.from(fresh.manifestBytes));
    expect(Buffer.from(first.manifestBytes)).toEqual(Buffer.from(fresh.manifestBytes));
    expect(cached.digest).toBe(fresh.digest);
    expect(new TextDecoder().decode(fresh.manifestBytes)).toBe(canonicalize(fresh.manifest));
    expect(cached.files).toEqual(fresh.files);
    expect([...cached.blobs]).toEqual([...fresh.blobs]);
  });

  it("files with the same bytes share one blob", async () => {
    await writeFile(path.join(app, "copy.txt"), "file number 1\n");
    const resolved = await resolve();
    expect(resolved.manifest.entries.filter((e) => e.type === "file")).toHaveLength(11);
    expect(resolved.blobs.size).toBe(10);
  });
});
