/**
 * Downloads a layer's context tarball from the orchestrator (bearer download token),
 * streaming it to disk while hashing, and refuses it unless its size and sha256 match what
 * the job declared. Retries network errors and 5xx a few times.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { sleep } from "./event-client.ts";
import { infraFailure, JobFailure } from "./failure.ts";

/** What to download and how big it may be. */
export type ContextRef = { url: string; digest: string; sizeBytes: number };

/** Options of {@link downloadContext}. */
export type DownloadOptions = { token: string; signal?: AbortSignal; fetch?: typeof fetch; attempts?: number; maxBytes?: number };

/** Downloads `ref` to `file`; throws an `infra` JobFailure on any mismatch or error. */
export async function downloadContext(ref: ContextRef, file: string, options: DownloadOptions): Promise<void> {
  const limit = Math.min(ref.sizeBytes, options.maxBytes ?? Number.MAX_SAFE_INTEGER);
  if (ref.sizeBytes > limit)
    throw infraFailure(`context ${ref.digest} is ${ref.sizeBytes} bytes, over this runner's limit of ${limit} bytes`);
  const attempts = options.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await downloadOnce(ref, file, limit, options);
    } catch (error) {
      await rm(file, { force: true });
      // A wrong digest or size will not improve; a dropped connection or a 5xx may.
      const retryable = !(error instanceof JobFailure);
      if (options.signal?.aborted || !retryable || attempt >= attempts) {
        throw error instanceof JobFailure
          ? error
          : infraFailure(`could not download context ${ref.digest}: ${error instanceof Error ? error.message : String(error)}`, error);
      }
      await sleep(500 * 2 ** attempt, options.signal);
    }
  }
}

/** An HTTP answer worth retrying (5xx, 408, 429). */
class TransientHttpError extends Error {
  override name = "TransientHttpError";
}

async function downloadOnce(ref: ContextRef, file: string, limit: number, options: DownloadOptions): Promise<void> {
  const response = await (options.fetch ?? fetch)(ref.url, {
    headers: { authorization: `Bearer ${options.token}` },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    const message = `context download of ${ref.digest} answered HTTP ${response.status}`;
    if (response.status >= 500 || response.status === 429 || response.status === 408) throw new TransientHttpError(message);
    throw infraFailure(message);
  }
  const hash = createHash("sha256");
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > limit) return callback(infraFailure(`context ${ref.digest} is larger than its declared ${ref.sizeBytes} bytes`));
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(response.body as WebReadableStream), meter, createWriteStream(file, { mode: 0o600 }));
  if (size !== ref.sizeBytes) throw infraFailure(`context ${ref.digest} is ${size} bytes, but the job declared ${ref.sizeBytes}`);
  const digest = `sha256:${hash.digest("hex")}`;
  if (digest !== ref.digest) throw infraFailure(`context download does not match its digest: expected ${ref.digest}, got ${digest}`);
}
