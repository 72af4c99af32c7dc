// Context uploads (decision 0022) hold no file in memory: batches, single files and multipart
// parts are read from disk as each request sends them, so a retried request sends the same bytes
// again, and a file that changed size since the walk fails loudly instead of uploading other bytes.
import { createHash } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { decodeBlobBatch } from "@kiln-build/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KilnClient } from "../src/client.ts";
import { resolveContext } from "../src/context.ts";
import { PART_BYTES, uploadListed } from "../src/context-upload.ts";
import { ExecutionError } from "../src/errors.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "kiln-upload-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** A server that fails the first request to each path with a 503, then keeps every body it is sent. */
function flakyServer() {
  const bodies = new Map<string, Uint8Array[]>();
  const fetch = (async (input: URL | string, init?: RequestInit) => {
    const url = new URL(String(input));
    const body = new Uint8Array(await new Response(init?.body).arrayBuffer());
    const key = `${init?.method} ${decodeURIComponent(url.pathname)}`;
    const seen = bodies.get(key) ?? [];
    seen.push(body);
    bodies.set(key, seen);
    if (seen.length === 1 && init?.method !== "POST")
      return Response.json({ error: { code: "unavailable", message: "try again" } }, { status: 503 });
    if (seen.length === 1 && url.pathname === "/v1/contexts/blobs")
      return Response.json({ error: { code: "unavailable", message: "x" } }, { status: 503 });
    if (url.pathname.endsWith("/uploads")) return Response.json({ uploadId: "up1" }, { status: 201 });
    if (url.pathname.includes("/parts/")) return Response.json({ etag: `etag-${url.pathname.split("/").at(-1)}` });
    return Response.json({ stored: [] }, { status: 201 });
  }) as typeof globalThis.fetch;
  return { client: new KilnClient({ serverUrl: "http://kiln.test", token: "t", fetch, maxRetries: 2 }), bodies };
}

describe("context uploads", () => {
  it("sends a batch of small files from disk, and the same bytes again on a retry", async () => {
    await writeFile(path.join(dir, "a.txt"), "alpha");
    await writeFile(path.join(dir, "b.txt"), "bravo!");
    const context = (await resolveContext(
      [
        { kind: "file", localPath: path.join(dir, "a.txt"), archivePath: "app/a.txt" },
        { kind: "file", localPath: path.join(dir, "b.txt"), archivePath: "app/b.txt" },
      ],
      path.join(dir, "cache"),
    ))!;
    const { client, bodies } = flakyServer();
    const report = await uploadListed(client, [context], new Set(context.blobs.keys()));
    expect(report.bytesUploaded).toBe(11);
    const sent = bodies.get("POST /v1/contexts/blobs")!;
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual(sent[0]);
    const batch = decodeBlobBatch(sent[1]!);
    if (!batch.ok) throw new Error(batch.message);
    expect(batch.blobs.map((b) => [b.digest, new TextDecoder().decode(b.bytes)])).toEqual([
      [sha(new TextEncoder().encode("alpha")), "alpha"],
      [sha(new TextEncoder().encode("bravo!")), "bravo!"],
    ]);
  });

  it("sends a large file in parts read from disk, each part again whole on a retry", async () => {
    const file = path.join(dir, "big.bin");
    // Sparse but for a marker at each end of the first part, so the parts differ.
    const handle = await open(file, "w");
    await handle.write(Buffer.from("start"), 0, 5, 0);
    await handle.write(Buffer.from("edge!"), 0, 5, PART_BYTES - 5);
    await handle.truncate(PART_BYTES + 1000);
    await handle.close();
    const context = (await resolveContext([{ kind: "file", localPath: file, archivePath: "big.bin" }], path.join(dir, "cache")))!;
    const { client, bodies } = flakyServer();
    await uploadListed(client, [context], new Set(context.blobs.keys()));
    const digest = [...context.blobs.keys()][0]!;
    const first = bodies.get(`PUT /v1/contexts/${digest}/uploads/up1/parts/1`)!;
    const second = bodies.get(`PUT /v1/contexts/${digest}/uploads/up1/parts/2`)!;
    expect(first.map((b) => b.byteLength)).toEqual([PART_BYTES, PART_BYTES]);
    expect(Buffer.from(first[1]!.subarray(0, 5)).toString()).toBe("start");
    expect(Buffer.from(first[1]!.subarray(PART_BYTES - 5)).toString()).toBe("edge!");
    expect(second.at(-1)!.byteLength).toBe(1000);
    const whole = new Uint8Array(PART_BYTES + 1000);
    whole.set(first[1]!, 0);
    whole.set(second.at(-1)!, PART_BYTES);
    expect(sha(whole)).toBe(digest);
  });

  it("asks fetch not to copy streamed bodies (no redirect clone), and only those", async () => {
    const file = path.join(dir, "mid.bin");
    await writeFile(file, Buffer.alloc(2 * 1024 * 1024, 1));
    await writeFile(path.join(dir, "small.txt"), "small");
    const context = (await resolveContext(
      [
        { kind: "file", localPath: file, archivePath: "mid.bin" },
        { kind: "file", localPath: path.join(dir, "small.txt"), archivePath: "small.txt" },
      ],
      path.join(dir, "cache"),
    ))!;
    const inits: RequestInit[] = [];
    const fetch = (async (_input: URL | string, init?: RequestInit) => {
      inits.push(init!);
      await new Response(init?.body).arrayBuffer();
      return Response.json({ missing: [] }, { status: 201 });
    }) as typeof globalThis.fetch;
    const client = new KilnClient({ serverUrl: "http://kiln.test", token: "t", fetch, maxRetries: 0 });
    await uploadListed(client, [context], new Set([context.digest, ...context.blobs.keys()]));
    const streamed = inits.filter((i) => i.body instanceof ReadableStream || i.body instanceof Blob);
    expect(streamed).toHaveLength(2); // the 2 MiB file, streamed; the batch of the small one
    for (const init of streamed) expect(init).toMatchObject({ window: null, redirect: "error" });
    const manifest = inits.find((i) => i.body instanceof Uint8Array)!;
    expect(manifest.redirect).toBeUndefined();
  });

  it("refuses a file whose size changed since the walk", async () => {
    const file = path.join(dir, "a.txt");
    await writeFile(file, "alpha");
    const context = (await resolveContext([{ kind: "file", localPath: file, archivePath: "a.txt" }], path.join(dir, "cache")))!;
    await writeFile(file, "alpha and more");
    const { client } = flakyServer();
    await expect(uploadListed(client, [context], new Set(context.blobs.keys()))).rejects.toThrow(ExecutionError);
  });
});
