/**
 * Build-log archives in R2 (bucket LOGS), written once when a build ends and read by the logs
 * route afterwards without waking the build's object. Layout under
 * `logs/<workspace id>/<build id>/`: NDJSON segments named by their first position
 * (`00000000000000000001.ndjson`, at most ~4 MiB each) and `index.json` listing them, written
 * last, so a reader that finds the index finds every segment.
 */
import type { LogChunk } from "./build-logs.ts";

/** Where a build's archive lives. */
export function archivePrefix(workspaceId: string, buildId: string): string {
  return `logs/${workspaceId}/${buildId}/`;
}

/** The archive's table of contents. */
export type ArchiveIndex = { segments: { key: string; firstPos: number; lastPos: number }[]; lastPos: number };

const SEGMENT_BYTES = 4 * 1024 * 1024;

/** Writes every chunk `readPage` yields (pages after a cursor) to R2; returns the prefix. Idempotent (same keys, same content). */
export async function writeArchive(bucket: R2Bucket, prefix: string, readPage: (cursor: number) => LogChunk[]): Promise<string> {
  const index: ArchiveIndex = { segments: [], lastPos: 0 };
  let cursor = 0;
  let lines: string[] = [];
  let bytes = 0;
  let first = 0;
  const flush = async () => {
    if (lines.length === 0) return;
    const key = `${prefix}${String(first).padStart(20, "0")}.ndjson`;
    await bucket.put(key, lines.join(""), { httpMetadata: { contentType: "application/x-ndjson" } });
    index.segments.push({ key, firstPos: first, lastPos: cursor });
    lines = [];
    bytes = 0;
  };
  for (;;) {
    const page = readPage(cursor);
    if (page.length === 0) break;
    for (const chunk of page) {
      if (lines.length === 0) first = chunk.pos;
      const line = `${JSON.stringify(chunk)}\n`;
      lines.push(line);
      bytes += line.length;
      cursor = chunk.pos;
      if (bytes >= SEGMENT_BYTES) await flush();
    }
  }
  await flush();
  index.lastPos = cursor;
  await bucket.put(`${prefix}index.json`, JSON.stringify(index), { httpMetadata: { contentType: "application/json" } });
  return prefix;
}

/** Chunks after `cursor` from an archive, at most `maxChunks`; null when the archive has no index. */
export async function readArchive(
  bucket: R2Bucket,
  prefix: string,
  cursor: number,
  maxChunks: number,
): Promise<{ chunks: LogChunk[]; lastPos: number } | null> {
  const object = await bucket.get(`${prefix}index.json`);
  if (!object) return null;
  const index = (await object.json()) as ArchiveIndex;
  const chunks: LogChunk[] = [];
  for (const segment of index.segments) {
    if (segment.lastPos <= cursor) continue;
    const body = await bucket.get(segment.key);
    if (!body) throw new Error(`log archive segment ${segment.key} is missing`);
    for (const line of (await body.text()).split("\n")) {
      if (!line) continue;
      const chunk = JSON.parse(line) as LogChunk;
      if (chunk.pos > cursor) chunks.push(chunk);
      if (chunks.length >= maxChunks) return { chunks, lastPos: index.lastPos };
    }
  }
  return { chunks, lastPos: index.lastPos };
}
