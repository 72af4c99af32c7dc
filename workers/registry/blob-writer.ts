/**
 * Moving blob bytes into R2 without holding a layer in memory. A streamed upload (one PATCH
 * with a length and no Content-Range: what docker, skopeo and crane send) goes into one plain
 * object at the session's key, hashed on the way in. Anything else is cut into fixed-size
 * parts of the session's R2 multipart upload (R2 wants equal parts except the last, and
 * clients send arbitrary chunk sizes), the remainder kept in a small tail object that the next
 * request prepends; a whole object that receives more bytes is first turned into parts. At
 * most two parts (16 MiB) are in memory at once.
 * See docs/decisions/0011-registry-upload-sessions.md.
 */

import { digestHex, digestOfBytes } from "@kiln-build/protocol";
import { forEachPiece, putChecked } from "../r2-writes.ts";
import type { UploadCommit, UploadState } from "./upload-session.ts";

/** Size of every multipart part but the last (R2 needs >= 5 MiB; 10,000 parts cap a blob at 80 GiB). */
export const PART_BYTES = 8 * 1024 * 1024;

/**
 * Largest streamed request stored as one object: R2's single `put` takes up to 5 GiB; a
 * Workers request body is far smaller on every plan, so in production this never binds.
 */
export const WHOLE_OBJECT_MAX_BYTES = 4 * 1024 ** 3;
// How often the whole-object path renews its lease.
const LEASE_RENEW_BYTES = 64 * 1024 * 1024;

/** What one request wrote: the session's new state to commit, and the error that cut it short, if any. */
export type Appended = { commit: UploadCommit; error: unknown; newParts: { partNumber: number; etag: string }[] };

/** How a request's body arrived. */
export type RequestShape = { contentLength: number | null; hasContentRange: boolean };

/**
 * Stores one request's body on the session, choosing the layout: a whole object for a
 * streamed upload with a length, multipart parts otherwise (promoting a whole object first).
 */
export async function writeRequest(
  bucket: R2Bucket,
  state: UploadState,
  body: ReadableStream<Uint8Array> | null,
  shape: RequestShape,
  progress: (commit: UploadCommit) => Promise<void>,
): Promise<Appended> {
  const fresh = state.offset === 0 && state.writes === 0 && !state.mpuId && !state.tailKey;
  const length = shape.contentLength;
  if (fresh && body && !shape.hasContentRange && length !== null && length > 0 && length <= WHOLE_OBJECT_MAX_BYTES) {
    return writeWholeObject(bucket, state, body, length, progress);
  }
  let current = state;
  if (state.wholeObject) {
    const promoted = await promoteToParts(bucket, state, progress);
    if (promoted.error) return promoted;
    current = {
      ...state,
      ...promoted.commit,
      partCount: promoted.newParts.length,
      writes: state.writes + 1,
      firstSha256: null,
      wholeObject: false,
    };
    const appended = await appendBody(bucket, current, body, progress);
    return { ...appended, newParts: [...promoted.newParts, ...appended.newParts] };
  }
  return appendBody(bucket, current, body, progress);
}

/**
 * A streamed upload with a known length: one R2 object at the session's key, hashed on the
 * way in (one read feeds both, so nothing waits in memory for the slower of the two). R2's
 * `put` is atomic: a body cut short stores nothing and the session stays at offset 0.
 */
async function writeWholeObject(
  bucket: R2Bucket,
  state: UploadState,
  body: ReadableStream<Uint8Array>,
  length: number,
  progress: (commit: UploadCommit) => Promise<void>,
): Promise<Appended> {
  const unchanged: UploadCommit = { mpuId: null, newParts: [], offset: 0, tailKey: null, tailSize: 0, progress: false, sha256: null };
  const fixed = new FixedLengthStream(length);
  const stored = bucket.put(state.r2Key, fixed.readable);
  const writer = fixed.writable.getWriter();
  const digest = new crypto.DigestStream("SHA-256");
  const hashWriter = digest.getWriter();
  let sinceRenewal = 0;
  try {
    await forEachPiece(body, async (piece) => {
      await hashWriter.write(piece);
      await writer.write(piece);
      sinceRenewal += piece.byteLength;
      // Keeps the lease of a long write alive (multipart writers renew it with every part).
      if (sinceRenewal >= LEASE_RENEW_BYTES) {
        sinceRenewal = 0;
        await progress({ ...unchanged, progress: true });
      }
    });
    await writer.close();
    await stored;
    await hashWriter.close();
    const sha256 = digestOfBytes(await digest.digest);
    return { commit: { ...unchanged, offset: length, sha256, wholeObject: true }, error: null, newParts: [] };
  } catch (error) {
    await writer.abort(error).catch(() => undefined);
    await stored.catch(() => undefined);
    await hashWriter.abort(error).catch(() => undefined);
    await digest.digest.catch(() => undefined);
    return { commit: unchanged, error, newParts: [] };
  }
}

/** Re-reads a whole object into multipart parts, so more bytes can follow it. */
async function promoteToParts(bucket: R2Bucket, state: UploadState, progress: (commit: UploadCommit) => Promise<void>): Promise<Appended> {
  const object = await bucket.get(state.r2Key);
  if (!object) throw new Error(`R2 object ${state.r2Key} of upload ${state.uploadId} is missing`);
  const asParts: UploadState = {
    ...state,
    mpuId: null,
    offset: 0,
    partCount: 0,
    tailKey: null,
    tailSize: 0,
    writes: 1,
    firstSha256: null,
    wholeObject: false,
  };
  return appendBody(bucket, asParts, object.body, progress);
}

/** Content-addressed key of a blob written in one request. */
export const blobKey = (digest: string) => `blobs/sha256/${digestHex(digest)}`;

/**
 * Streams `body` onto the session's multipart upload, reporting every stored part through `progress` (so a
 * dropped connection, which cancels this request, keeps what was stored). On a broken body
 * it returns the progress kept and the error.
 */
export async function appendBody(
  bucket: R2Bucket,
  state: UploadState,
  body: ReadableStream<Uint8Array> | null,
  progress: (commit: UploadCommit) => Promise<void>,
): Promise<Appended> {
  let mpu = state.mpuId ? bucket.resumeMultipartUpload(state.r2Key, state.mpuId) : null;
  const newParts: { partNumber: number; etag: string }[] = [];
  // Only a session's first request can be hashed in one pass: WebCrypto cannot save a hash state.
  const digest = state.offset === 0 && state.writes === 0 ? new crypto.DigestStream("SHA-256") : null;
  const hashWriter = digest?.getWriter();
  let prefix: Uint8Array | null = state.tailKey && state.tailSize > 0 ? await readSmall(bucket, state.tailKey) : null;
  let pending: Promise<void> = Promise.resolve();
  let error: unknown = null;
  let tail: Uint8Array | null = null;
  const reader = body?.getReader({ mode: "byob" }) ?? null;
  try {
    for (;;) {
      let buffer = new ArrayBuffer(PART_BYTES);
      let filled = 0;
      if (prefix) {
        new Uint8Array(buffer).set(prefix);
        filled = prefix.byteLength;
        prefix = null;
      }
      let eof = reader === null;
      while (!eof && filled < PART_BYTES) {
        const read = await reader!.readAtLeast(PART_BYTES - filled, new Uint8Array(buffer, filled, PART_BYTES - filled));
        if (read.value) {
          buffer = read.value.buffer as ArrayBuffer;
          filled += read.value.byteLength;
        }
        if (read.done) eof = true;
      }
      if (filled < PART_BYTES) {
        tail = new Uint8Array(buffer, 0, filled);
        break;
      }
      const part = new Uint8Array(buffer);
      if (hashWriter) await hashWriter.write(part);
      await pending;
      mpu ??= await bucket.createMultipartUpload(state.r2Key);
      const partNumber = state.partCount + newParts.length + 1;
      const upload = mpu;
      pending = upload.uploadPart(partNumber, part).then(async (uploaded) => {
        newParts.push({ partNumber: uploaded.partNumber, etag: uploaded.etag });
        const stored = { partNumber: uploaded.partNumber, etag: uploaded.etag };
        await progress({
          mpuId: upload.uploadId,
          newParts: [stored],
          offset: (state.partCount + newParts.length) * PART_BYTES,
          tailKey: null,
          tailSize: 0,
          progress: true,
          sha256: null,
        });
      });
      if (eof) {
        tail = new Uint8Array(0);
        break;
      }
    }
    await pending;
  } catch (e) {
    error = e;
    await pending.catch(() => undefined);
  }
  newParts.sort((a, b) => a.partNumber - b.partNumber);
  const consumedOldTail = newParts.length > 0 || tail !== null;
  let tailKey = consumedOldTail ? null : state.tailKey;
  let tailSize = consumedOldTail ? 0 : state.tailSize;
  let sha256: string | null = null;
  if (!error && tail && tail.byteLength > 0) {
    tailKey = `${state.r2Key}/tail-${state.writes + 1}`;
    tailSize = tail.byteLength;
    await bucket.put(tailKey, tail);
  }
  if (!error && hashWriter && digest) {
    if (tail?.byteLength) await hashWriter.write(tail);
    await hashWriter.close();
    sha256 = digestOfBytes(await digest.digest);
  }
  // Parts were already reported one by one; the final commit carries the tail and the hash.
  if (consumedOldTail && state.tailKey && state.tailKey !== tailKey) await bucket.delete(state.tailKey);
  const offset = (state.partCount + newParts.length) * PART_BYTES + tailSize;
  return { commit: { mpuId: mpu?.uploadId ?? null, newParts: [], offset, tailKey, tailSize, progress: false, sha256 }, error, newParts };
}

/** Result of assembling and verifying a finished session. */
export type Assembled = { ok: true; r2Key: string; sizeBytes: number } | { ok: false; actual: string };

/**
 * Turns a finished session into a verified blob. A whole object is checked against the hash
 * taken on the way in (or streamed through one) and stays where it is. Small blobs (no full part) are copied from
 * the tail to their content-addressed key with R2 checking the sha256; larger ones are
 * completed in place and hashed by streaming through `crypto.DigestStream`, unless one
 * request wrote them all and was hashed on the way in. A mismatch deletes what was written.
 */
export async function assemble(
  bucket: R2Bucket,
  state: UploadState,
  parts: { partNumber: number; etag: string }[],
  expected: string,
): Promise<Assembled> {
  if (state.wholeObject) {
    const actual = state.firstSha256 ?? (await hashObject(bucket, state.r2Key));
    if (actual !== expected) {
      await bucket.delete(state.r2Key);
      return { ok: false, actual };
    }
    return { ok: true, r2Key: state.r2Key, sizeBytes: state.offset };
  }
  const tail = state.tailKey && state.tailSize > 0 ? await readSmall(bucket, state.tailKey) : new Uint8Array(0);
  if (parts.length === 0) {
    const actual = digestOfBytes(await crypto.subtle.digest("SHA-256", tail));
    if (actual !== expected) return { ok: false, actual };
    const key = blobKey(expected);
    await bucket.put(key, tail, { sha256: digestHex(expected) });
    return { ok: true, r2Key: key, sizeBytes: tail.byteLength };
  }
  const mpu = bucket.resumeMultipartUpload(state.r2Key, state.mpuId!);
  const all = [...parts];
  if (tail.byteLength > 0) all.push(await mpu.uploadPart(state.partCount + 1, tail));
  const object = await mpu.complete(all);
  const actual = state.firstSha256 ?? (await hashObject(bucket, state.r2Key));
  if (actual !== expected) {
    await bucket.delete(state.r2Key);
    return { ok: false, actual };
  }
  return { ok: true, r2Key: state.r2Key, sizeBytes: object.size };
}

/**
 * Writes a whole blob sent in one request (`length` bytes) straight to its content-addressed
 * key; R2 checks the sha256 and stores nothing on a mismatch. Returns false on a mismatch.
 */
export async function putMonolithic(
  bucket: R2Bucket,
  digest: string,
  body: ReadableStream<Uint8Array> | Uint8Array,
  length: number,
): Promise<{ sizeBytes: number } | false> {
  const object = await putChecked(bucket, blobKey(digest), body, length, digestHex(digest));
  return object === null ? false : { sizeBytes: object.size };
}

/** sha256 of a stored object, streamed (never buffered). */
export async function hashObject(bucket: R2Bucket, key: string): Promise<string> {
  const object = await bucket.get(key);
  if (!object) throw new Error(`R2 object ${key} vanished while being verified`);
  const digest = new crypto.DigestStream("SHA-256");
  await object.body.pipeTo(digest);
  return digestOfBytes(await digest.digest);
}

async function readSmall(bucket: R2Bucket, key: string): Promise<Uint8Array> {
  const object = await bucket.get(key);
  if (!object) throw new Error(`R2 tail object ${key} is missing`);
  return new Uint8Array(await object.arrayBuffer());
}
