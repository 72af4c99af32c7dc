// Streamed bodies reach R2 re-read in large pieces (workers/r2-writes.ts): the same bytes
// arrive however finely the body was cut, a body of the wrong length or digest stores
// nothing, and at most one piece is read ahead of R2.
import { env } from "cloudflare:test";
import { digestHex } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { forEachPiece, putChecked, WRITE_PIECE_BYTES, writeInPieces } from "../../workers/r2-writes.ts";
import { bytes, sha256Digest } from "./periphery-helpers.ts";

/** `data` as a byte stream cut into `chunk`-byte pieces, as workerd hands over a request body. */
function streamOf(data: Uint8Array, chunk = 4096): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (offset >= data.byteLength) return controller.close();
      controller.enqueue(data.slice(offset, offset + chunk));
      offset += chunk;
    },
  });
}

describe("forEachPiece", () => {
  it("hands over pieces of WRITE_PIECE_BYTES but the last, in order, whatever the body's chunks", async () => {
    const data = bytes(2 * WRITE_PIECE_BYTES + 12345, 71);
    const sizes: number[] = [];
    const joined = new Uint8Array(data.byteLength);
    await forEachPiece(streamOf(data, 3000), async (piece) => {
      joined.set(
        piece,
        sizes.reduce((a, b) => a + b, 0),
      );
      sizes.push(piece.byteLength);
    });
    expect(sizes).toEqual([WRITE_PIECE_BYTES, WRITE_PIECE_BYTES, 12345]);
    expect(await sha256Digest(joined)).toBe(await sha256Digest(data));
  });

  it("cancels the body when the callback fails", async () => {
    let cancelled = false;
    const body = new ReadableStream({
      type: "bytes",
      pull: (controller: ReadableByteStreamController) => controller.enqueue(new Uint8Array(64 * 1024)),
      cancel: () => {
        cancelled = true;
      },
    });
    await expect(forEachPiece(body, () => Promise.reject(new Error("stop")))).rejects.toThrow("stop");
    expect(cancelled).toBe(true);
  });
});

describe("putChecked", () => {
  it("stores a finely cut body byte for byte when its sha256 matches", async () => {
    const data = bytes(3 * WRITE_PIECE_BYTES + 99, 72);
    const digest = await sha256Digest(data);
    const object = await putChecked(env.REGISTRY, "test/pieces/match", streamOf(data), data.byteLength, digestHex(digest));
    expect(object?.size).toBe(data.byteLength);
    const stored = await env.REGISTRY.get("test/pieces/match");
    expect(await sha256Digest(new Uint8Array(await stored!.arrayBuffer()))).toBe(digest);
  });

  it("answers null and stores nothing when the sha256 does not match", async () => {
    const data = bytes(WRITE_PIECE_BYTES + 5, 73);
    const other = await sha256Digest(bytes(10, 74));
    expect(await putChecked(env.REGISTRY, "test/pieces/mismatch", streamOf(data), data.byteLength, digestHex(other))).toBeNull();
    expect(await env.REGISTRY.head("test/pieces/mismatch")).toBeNull();
  });

  it("rejects and stores nothing when the body is shorter or longer than its length", async () => {
    const data = bytes(WRITE_PIECE_BYTES + 5, 75);
    const hex = digestHex(await sha256Digest(data));
    await expect(putChecked(env.REGISTRY, "test/pieces/short", streamOf(data), data.byteLength + 1, hex)).rejects.toThrow();
    await expect(putChecked(env.REGISTRY, "test/pieces/long", streamOf(data), data.byteLength - 1, hex)).rejects.toThrow();
    expect(await env.REGISTRY.head("test/pieces/short")).toBeNull();
    expect(await env.REGISTRY.head("test/pieces/long")).toBeNull();
  });
});

describe("writeInPieces", () => {
  it("feeds a multipart part upload the exact bytes", async () => {
    const data = bytes(5 * 1024 * 1024 + 1, 76);
    const upload = await env.REGISTRY.createMultipartUpload("test/pieces/part");
    const part = await writeInPieces(streamOf(data, 1000), data.byteLength, (value) => upload.uploadPart(1, value));
    await upload.complete([part]);
    const stored = await env.REGISTRY.get("test/pieces/part");
    expect(await sha256Digest(new Uint8Array(await stored!.arrayBuffer()))).toBe(await sha256Digest(data));
  });
});
