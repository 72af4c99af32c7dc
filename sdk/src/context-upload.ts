/**
 * Uploading build contexts (docs/decisions/0022): a context is a manifest plus file blobs.
 * A missing manifest is put first, and the server answers with the blobs it names that the
 * workspace lacks; only those are sent: small ones batched into one request, medium ones
 * streamed one request each, large ones through the multipart endpoints, every request under
 * the Workers body limit. No request holds a file in memory: every body is read from disk a
 * chunk at a time as the request sends it (file-stream.ts), and opened afresh if the client
 * retries it.
 */
import { encodeBlobBatchHead } from "@kiln-build/protocol";
import type { KilnClient } from "./client.ts";
import type { BlobSource, ResolvedContext } from "./context-manifest.ts";
import { type FileSegment, segmentsLength, segmentsStream } from "./file-stream.ts";

/** Part size for multipart uploads: the server's maximum, so requests stay below 100 MB. */
export const PART_BYTES = 64 * 1024 * 1024;
/** Blobs up to this size travel batched. */
export const BATCH_BLOB_BYTES = 1024 * 1024;
/** A batch closes at this many bytes or `BATCH_MAX_BLOBS` blobs. */
export const BATCH_BYTES = 8 * 1024 * 1024;
/** Most blobs in one batch request. */
export const BATCH_MAX_BLOBS = 256;
const CONCURRENCY = 4;
const MISSING_BATCH = 256;

/** What an upload pass did, for logs and tests ("an unchanged resubmission uploads 0 bytes"). */
export type UploadReport = { uploaded: string[]; bytesUploaded: number };

/**
 * Told how far an upload pass got: first with 0 bytes sent once the missing blobs are known,
 * then as bytes go out (whole batches, files or parts), last with `sent === total`.
 */
export type UploadProgress = (sent: number, total: number) => void;

/** Uploads every manifest and blob of `contexts` the server is missing (asked first); returns what was sent. */
export async function uploadContexts(
  client: KilnClient,
  contexts: readonly ResolvedContext[],
  progress?: UploadProgress,
): Promise<UploadReport> {
  const digests = [...new Set(contexts.flatMap((c) => [c.digest, ...c.blobs.keys()]))];
  const missing = new Set<string>();
  for (let i = 0; i < digests.length; i += MISSING_BATCH) {
    const answer = await client.json<{ missing: string[] }>("POST", ["v1", "contexts", "missing"], {
      json: { digests: digests.slice(i, i + MISSING_BATCH) },
    });
    for (const d of answer.missing) missing.add(d);
  }
  return uploadListed(client, contexts, missing, progress);
}

/**
 * Uploads what the server said it lacks (a submission's `context_not_found` answer, or
 * `POST /v1/contexts/missing`): each listed manifest (whose answer adds its missing blobs)
 * and each listed blob of `contexts`; returns what was sent.
 */
export async function uploadListed(
  client: KilnClient,
  contexts: readonly ResolvedContext[],
  missing: ReadonlySet<string>,
  progress?: UploadProgress,
): Promise<UploadReport> {
  const report: UploadReport = { uploaded: [], bytesUploaded: 0 };
  const toSend = new Map<string, BlobSource>();
  for (const context of new Map(contexts.map((c) => [c.digest, c])).values()) {
    if (missing.has(context.digest)) {
      const answer = await client.json<{ missing: string[] }>("PUT", ["v1", "contexts", "manifests", context.digest], {
        body: context.manifestBytes as Uint8Array<ArrayBuffer>,
        headers: { "content-type": "application/json" },
      });
      report.uploaded.push(context.digest);
      report.bytesUploaded += context.sizeBytes;
      for (const d of answer.missing) {
        const source = context.blobs.get(d);
        if (source) toSend.set(d, source);
      }
    }
    for (const [d, source] of context.blobs) if (missing.has(d)) toSend.set(d, source);
  }
  const total = [...toSend.values()].reduce((sum, b) => sum + b.sizeBytes, 0);
  let sent = 0;
  // A retried request counts its bytes again: never report more than there is.
  const count = (bytes: number) => {
    sent += bytes;
    progress?.(Math.min(sent, total), total);
  };
  count(0);
  const queue = planRequests(toSend);
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      await next.send(client, count);
      for (const [d, b] of next.blobs) {
        report.uploaded.push(d);
        report.bytesUploaded += b.sizeBytes;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
  if (sent < total) progress?.(total, total);
  return report;
}

type Request = { blobs: [string, BlobSource][]; send: (client: KilnClient, count: (bytes: number) => void) => Promise<void> };

/** Groups blobs into requests: batches of small blobs, then one request (or multipart upload) per larger blob. */
function planRequests(blobs: ReadonlyMap<string, BlobSource>): Request[] {
  const requests: Request[] = [];
  let batch: [string, BlobSource][] = [];
  let batchBytes = 0;
  const flush = () => {
    if (batch.length === 0) return;
    const members = batch;
    requests.push({ blobs: members, send: (client, count) => uploadBatch(client, members, count) });
    batch = [];
    batchBytes = 0;
  };
  for (const [digest, source] of blobs) {
    if (source.sizeBytes > BATCH_BLOB_BYTES) {
      const send = source.sizeBytes > PART_BYTES ? uploadMultipart : uploadWhole;
      requests.push({ blobs: [[digest, source]], send: (client, count) => send(client, digest, source, count) });
      continue;
    }
    if (batch.length >= BATCH_MAX_BLOBS || batchBytes + source.sizeBytes > BATCH_BYTES) flush();
    batch.push([digest, source]);
    batchBytes += source.sizeBytes;
  }
  flush();
  return requests;
}

async function uploadBatch(client: KilnClient, blobs: [string, BlobSource][], count: (bytes: number) => void): Promise<void> {
  const head = encodeBlobBatchHead(blobs.map(([digest, source]) => ({ digest, sizeBytes: source.sizeBytes })));
  // The index, then each file's bytes read from disk as the request streams.
  const segments = blobs.map(([, source]) => wholeFile(source));
  await client.json("POST", ["v1", "contexts", "blobs"], {
    stream: () => segmentsStream(segments, { head }),
    headers: { "content-type": "application/vnd.kiln.blob-batch", "content-length": String(segmentsLength(segments, head)) },
  });
  count(blobs.reduce((sum, [, source]) => sum + source.sizeBytes, 0));
}

/** All of a blob's file, which must still be the size the walk saw. */
function wholeFile(source: BlobSource): FileSegment {
  return { absPath: source.absPath, path: source.path, fileSize: source.sizeBytes, start: 0, length: source.sizeBytes };
}

async function uploadWhole(client: KilnClient, digest: string, source: BlobSource, count: (bytes: number) => void): Promise<void> {
  // Streams straight from disk; the server and R2 check the sha256, so a file edited since
  // describe() fails loudly instead of storing the wrong bytes.
  const segments = [wholeFile(source)];
  await client.request("PUT", ["v1", "contexts", digest], {
    stream: () => segmentsStream(segments, { onBytes: count }),
    headers: { "content-type": "application/octet-stream", "content-length": String(source.sizeBytes) },
  });
}

async function uploadMultipart(client: KilnClient, digest: string, source: BlobSource, count: (bytes: number) => void): Promise<void> {
  const path = ["v1", "contexts", digest, "uploads"];
  const upload = await client.json<{ uploadId: string }>("POST", path, {
    json: { sizeBytes: source.sizeBytes, partSizeBytes: PART_BYTES },
  });
  const parts: { partNumber: number; etag: string }[] = [];
  // Each part is read from disk as it is sent (and again if the client retries it).
  for (let start = 0, partNumber = 1; start < source.sizeBytes; start += PART_BYTES, partNumber++) {
    const length = Math.min(PART_BYTES, source.sizeBytes - start);
    const part: FileSegment = { ...wholeFile(source), start, length };
    const answer = await client.json<{ etag: string }>("PUT", [...path, upload.uploadId, "parts", String(partNumber)], {
      stream: () => segmentsStream([part]),
      headers: { "content-type": "application/octet-stream", "content-length": String(length) },
    });
    parts.push({ partNumber, etag: answer.etag });
    count(length);
  }
  await client.json("POST", [...path, upload.uploadId, "complete"], { json: { parts } });
}
