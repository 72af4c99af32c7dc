/**
 * The body of `POST /v1/contexts/blobs` (docs/decisions/0022): many small file blobs in one
 * request. A 4-byte big-endian length, that many bytes of JSON (`[{digest, sizeBytes}]`),
 * then each blob's bytes in index order, nothing after. Web APIs only.
 */
import { z } from "zod";
import { Sha256Digest } from "./digest.ts";

/** Most blobs one batch may carry. */
export const MAX_BATCH_BLOBS = 256;
/** Largest batch body, index included (well under the Workers request body limit). */
export const MAX_BATCH_BYTES = 17 * 1024 * 1024;

const BatchIndex = z
  .array(z.object({ digest: Sha256Digest, sizeBytes: z.number().int().nonnegative() }).strict())
  .min(1)
  .max(MAX_BATCH_BLOBS);

/** One blob of a batch. */
export type BatchBlob = { digest: string; bytes: Uint8Array };

/** Encodes blobs into one batch body. */
export function encodeBlobBatch(blobs: readonly BatchBlob[]): Uint8Array {
  const head = encodeBlobBatchHead(blobs.map((b) => ({ digest: b.digest, sizeBytes: b.bytes.byteLength })));
  const out = new Uint8Array(head.byteLength + blobs.reduce((sum, b) => sum + b.bytes.byteLength, 0));
  out.set(head, 0);
  let offset = head.byteLength;
  for (const blob of blobs) {
    out.set(blob.bytes, offset);
    offset += blob.bytes.byteLength;
  }
  return out;
}

/**
 * The part of a batch body before the blobs' bytes (the 4-byte length and the index), for a
 * sender that streams the blobs after it from elsewhere (the SDK sends them from disk).
 */
export function encodeBlobBatchHead(blobs: readonly { digest: string; sizeBytes: number }[]): Uint8Array {
  const index = new TextEncoder().encode(JSON.stringify(blobs.map((b) => ({ digest: b.digest, sizeBytes: b.sizeBytes }))));
  const head = new Uint8Array(4 + index.byteLength);
  new DataView(head.buffer).setUint32(0, index.byteLength);
  head.set(index, 4);
  return head;
}

/** Splits a batch body into its blobs, or returns why it is malformed (digests are checked by the caller). */
export function decodeBlobBatch(body: Uint8Array): { ok: true; blobs: BatchBlob[] } | { ok: false; message: string } {
  if (body.byteLength < 4) return { ok: false, message: "the batch is shorter than its 4-byte index length" };
  const indexLength = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(0);
  if (4 + indexLength > body.byteLength) return { ok: false, message: "the index is longer than the batch" };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body.subarray(4, 4 + indexLength)));
  } catch {
    return { ok: false, message: "the index is not JSON" };
  }
  const index = BatchIndex.safeParse(json);
  if (!index.success) return { ok: false, message: `invalid index: ${index.error.issues[0]?.message ?? "unknown"}` };
  const blobs: BatchBlob[] = [];
  let offset = 4 + indexLength;
  for (const { digest, sizeBytes } of index.data) {
    if (offset + sizeBytes > body.byteLength) return { ok: false, message: `the batch ends inside ${digest}` };
    blobs.push({ digest, bytes: body.subarray(offset, offset + sizeBytes) });
    offset += sizeBytes;
  }
  if (offset !== body.byteLength) return { ok: false, message: "bytes follow the last blob of the index" };
  return { ok: true, blobs };
}
