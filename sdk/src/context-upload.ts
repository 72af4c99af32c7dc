/**
 * Uploading build contexts: one call asks which digests the server lacks, then only those
 * are tarred again and streamed up (bounded concurrency). Tarballs above one part go
 * through the multipart endpoints, each request under the Workers body limit.
 */
import { Readable } from "node:stream";
import type { KilnClient } from "./client.ts";
import { collectContextEntries } from "./context.ts";
import { createContextTarStream } from "./context-tar.ts";
import type { ContextSource } from "./lowering/types.ts";

/** Part size for multipart uploads: the server's maximum, so requests stay below 100 MB. */
export const PART_BYTES = 64 * 1024 * 1024;
const CONCURRENCY = 4;
const MISSING_BATCH = 256;

/** One context to upload: its digest, size and the sources that reproduce its bytes. */
export type PendingContext = { digest: string; sizeBytes: number; sources: readonly ContextSource[] };

/** What an upload pass did, for logs and tests ("an unchanged resubmission uploads 0 bytes"). */
export type UploadReport = { uploaded: string[]; bytesUploaded: number };

/**
 * Told how far an upload pass got: first with 0 bytes sent once the missing contexts are
 * known, then as bytes stream out (whole parts for multipart uploads), last with `sent === total`.
 */
export type UploadProgress = (sent: number, total: number) => void;

/** Uploads every context the server is missing (one call asks which); returns what was sent. */
export async function uploadContexts(
  client: KilnClient,
  contexts: readonly PendingContext[],
  progress?: UploadProgress,
): Promise<UploadReport> {
  const unique = uniqueContexts(contexts);
  const missing = new Set<string>();
  for (let i = 0; i < unique.length; i += MISSING_BATCH) {
    const digests = unique.slice(i, i + MISSING_BATCH).map((c) => c.digest);
    const answer = await client.json<{ missing: string[] }>("POST", ["v1", "contexts", "missing"], { json: { digests } });
    for (const d of answer.missing) missing.add(d);
  }
  return uploadListed(client, contexts, missing, progress);
}

/**
 * Uploads the contexts among `contexts` whose digests the server said it lacks (a submission's
 * `context_not_found` answer, or `POST /v1/contexts/missing`); returns what was sent.
 */
export async function uploadListed(
  client: KilnClient,
  contexts: readonly PendingContext[],
  missing: ReadonlySet<string>,
  progress?: UploadProgress,
): Promise<UploadReport> {
  const queue = uniqueContexts(contexts).filter((c) => missing.has(c.digest));
  const report: UploadReport = { uploaded: [], bytesUploaded: 0 };
  const total = queue.reduce((sum, c) => sum + c.sizeBytes, 0);
  let sent = 0;
  // A retried request counts its bytes again: never report more than there is.
  const count = (bytes: number) => {
    sent += bytes;
    progress?.(Math.min(sent, total), total);
  };
  count(0);
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      await (next.sizeBytes > PART_BYTES ? uploadMultipart(client, next, count) : uploadWhole(client, next, count));
      report.uploaded.push(next.digest);
      report.bytesUploaded += next.sizeBytes;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
  if (sent < total) progress?.(total, total);
  return report;
}

function uniqueContexts(contexts: readonly PendingContext[]): PendingContext[] {
  return [...new Map(contexts.map((c) => [c.digest, c])).values()];
}

async function tarStream(context: PendingContext): Promise<Readable> {
  return createContextTarStream(await collectContextEntries(context.sources));
}

async function uploadWhole(client: KilnClient, context: PendingContext, count: (bytes: number) => void): Promise<void> {
  // Streams straight from disk; the server and R2 check the sha256, so a file edited since
  // describe() fails loudly instead of storing the wrong bytes.
  const body = Readable.toWeb(Readable.from(counted(await tarStream(context), count))) as ReadableStream<Uint8Array>;
  await client.request("PUT", ["v1", "contexts", context.digest], {
    body,
    headers: { "content-type": "application/x-tar", "content-length": String(context.sizeBytes) },
    duplex: true,
  });
}

/** The chunks of `stream`, each counted as the request body takes it. */
async function* counted(stream: Readable, count: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of stream as AsyncIterable<Uint8Array>) {
    count(chunk.byteLength);
    yield chunk;
  }
}

async function uploadMultipart(client: KilnClient, context: PendingContext, count: (bytes: number) => void): Promise<void> {
  const path = ["v1", "contexts", context.digest, "uploads"];
  const upload = await client.json<{ uploadId: string }>("POST", path, {
    json: { sizeBytes: context.sizeBytes, partSizeBytes: PART_BYTES },
  });
  const parts: { partNumber: number; etag: string }[] = [];
  let partNumber = 1;
  // One part in memory at a time: bounded by PART_BYTES, and retries can resend it.
  for await (const part of partsOf(await tarStream(context), PART_BYTES)) {
    const answer = await client.json<{ etag: string }>("PUT", [...path, upload.uploadId, "parts", String(partNumber)], {
      body: part,
      headers: { "content-type": "application/octet-stream" },
    });
    parts.push({ partNumber, etag: answer.etag });
    count(part.byteLength);
    partNumber++;
  }
  await client.json("POST", [...path, upload.uploadId, "complete"], { json: { parts } });
}

async function* partsOf(stream: Readable, size: number): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(size);
  let filled = 0;
  for await (const chunk of stream as AsyncIterable<Uint8Array>) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const n = Math.min(size - filled, chunk.byteLength - offset);
      buffer.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === size) {
        yield buffer;
        buffer = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}
