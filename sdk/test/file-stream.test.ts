// Upload bodies read from disk only as the request takes them (file-stream.ts): nothing is read
// ahead of the consumer, the bytes are exactly the segments', and a file changed since the walk
// fails the request with the SDK's own error, through a real fetch to a real server too.
import { createHash } from "node:crypto";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KilnClient } from "../src/client.ts";
import { ExecutionError } from "../src/errors.ts";
import { CHUNK_BYTES, type FileSegment, segmentsLength, segmentsStream } from "../src/file-stream.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "kiln-file-stream-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const patterned = (size: number, seed: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff));
const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function fileSegment(name: string, bytes: Buffer, start = 0, length = bytes.byteLength): Promise<FileSegment> {
  const absPath = path.join(dir, name);
  await writeFile(absPath, bytes);
  return { absPath, path: name, fileSize: bytes.byteLength, start, length };
}

describe("segmentsStream", () => {
  it("sends the head and then exactly each segment's bytes", async () => {
    const a = patterned(700_000, 1);
    const b = patterned(1000, 2);
    const segments = [await fileSegment("a.bin", a, 100, 600_000), await fileSegment("b.bin", b)];
    const head = new Uint8Array([9, 9, 9]);
    const sent = Buffer.from(await new Response(segmentsStream(segments, { head })).arrayBuffer());
    expect(sent.byteLength).toBe(segmentsLength(segments, head));
    expect(sha(sent)).toBe(sha(Buffer.concat([head, a.subarray(100, 600_100), b])));
  });

  it("sends segments of every size on both read paths, empty files and a part of a large file included", async () => {
    const chunk = CHUNK_BYTES;
    const files = [patterned(0, 6), patterned(1, 7), patterned(chunk, 8), patterned(chunk + 1, 9), patterned(3 * chunk, 10)];
    const segments = await Promise.all(files.map((bytes, i) => fileSegment(`f${i}.bin`, bytes)));
    // A one-chunk slice from the middle of the large file, and an empty file between two others.
    segments.push({ ...segments[4]!, start: chunk + 5, length: chunk - 10 }, segments[0]!, segments[1]!);
    const expected = Buffer.concat([...files, files[4]!.subarray(chunk + 5, 2 * chunk - 5), files[0]!, files[1]!]);
    const sent = Buffer.from(await new Response(segmentsStream(segments)).arrayBuffer());
    expect(sent.byteLength).toBe(segmentsLength(segments));
    expect(sha(sent)).toBe(sha(expected));
  });

  it("reads nothing ahead of the consumer", async () => {
    const segments = [await fileSegment("big.bin", patterned(4 * 1024 * 1024, 3))];
    let read = 0;
    const reader = segmentsStream(segments, { onBytes: (n) => (read += n) }).getReader();
    const first = await reader.read();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(read).toBe(first.value!.byteLength);
    expect(read).toBeLessThanOrEqual(CHUNK_BYTES);
    await reader.cancel();
  });

  it("fails with an ExecutionError when a file's size changed since the walk", async () => {
    const segment = await fileSegment("a.bin", patterned(5000, 4));
    await writeFile(segment.absPath, patterned(5001, 4));
    await expect(new Response(segmentsStream([segment])).arrayBuffer()).rejects.toThrow(/a\.bin: file modified during build/);
    const large = await fileSegment("large.bin", patterned(600_000, 4));
    await truncate(large.absPath, 500_000);
    await expect(new Response(segmentsStream([large])).arrayBuffer()).rejects.toThrow(
      /large\.bin: file modified during build \(expected 600000 bytes, found 500000\)/,
    );
  });

  it("fails with an ExecutionError when a file is gone", async () => {
    const first = await fileSegment("first.bin", patterned(10, 1));
    const gone = await fileSegment("gone.bin", patterned(10, 2));
    await rm(gone.absPath);
    await expect(new Response(segmentsStream([first, gone])).arrayBuffer()).rejects.toThrow(
      /gone\.bin: file modified during build \(it could not be opened\)/,
    );
  });

  it("sends small files together, a chunk at a time", async () => {
    const files = Array.from({ length: 40 }, (_, i) => patterned(10_000, i));
    const segments = await Promise.all(files.map((bytes, i) => fileSegment(`s${i}.bin`, bytes)));
    const chunks: number[] = [];
    const sent = Buffer.from(await new Response(segmentsStream(segments, { onBytes: (n) => chunks.push(n) })).arrayBuffer());
    expect(sha(sent)).toBe(sha(Buffer.concat(files)));
    // 400,000 bytes: fewer chunks than files, none larger than a chunk.
    expect(chunks.length).toBeLessThan(files.length / 4);
    expect(Math.max(...chunks)).toBeLessThanOrEqual(CHUNK_BYTES);
  });
});

describe("a streamed upload through a real fetch", () => {
  it("surfaces a file truncated while it is sent as the SDK's error, not a connection error", async () => {
    const bytes = patterned(3 * 1024 * 1024, 5);
    const segment = await fileSegment("c.bin", bytes);
    const server = http.createServer((req, res) => {
      let received = 0;
      req.on("data", (chunk: Buffer) => {
        received += chunk.byteLength;
      });
      req.on("end", () => res.end(JSON.stringify({ received })));
      req.on("error", () => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const client = new KilnClient({ serverUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: "t", maxRetries: 2 });
      let truncated = false;
      const upload = client.request("PUT", ["v1", "contexts", "x"], {
        stream: () =>
          segmentsStream([segment], {
            onBytes: () => {
              // The file shrinks once the first chunk has gone out.
              if (!truncated) {
                truncated = true;
                void truncate(segment.absPath, 1000);
              }
            },
          }),
        headers: { "content-length": String(bytes.byteLength) },
      });
      const error = await upload.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ExecutionError);
      expect(String(error)).toMatch(/c\.bin: file modified during build/);
    } finally {
      server.close();
    }
  });
});
