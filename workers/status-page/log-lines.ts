/**
 * Build-log chunks as status-page lines, pure: each chunk split at newlines and tagged with
 * its layer's 1-based position in the image (null for the orchestrator's own lines). A chunk
 * that ends mid-line yields that partial line as is: the page is a viewer, and the runner
 * flushes on line ends nearly always.
 */
import type { PageLogLine } from "./render.ts";

/** The chunk fields this module reads (a `LogChunk` of durable-objects/build-logs.ts). */
export type ChunkLike = { layerKey: string | null; stream: PageLogLine["stream"]; data: string };

/** Lines of `chunks`; `layerKeys` is the image's chain, base first. */
export function chunksToLines(chunks: readonly ChunkLike[], layerKeys: readonly string[]): PageLogLine[] {
  const position = new Map(layerKeys.map((key, i) => [key, i + 1]));
  const lines: PageLogLine[] = [];
  for (const chunk of chunks) {
    const layer = chunk.layerKey === null ? null : (position.get(chunk.layerKey) ?? null);
    const parts = chunk.data.split(/\r?\n/);
    if (parts.at(-1) === "") parts.pop();
    for (const text of parts) lines.push({ layer, stream: chunk.stream, text: stripOwnPrefix(text, chunk.layerKey) });
  }
  return lines;
}

// The orchestrator writes its own lines as "[kiln] ..."; the page adds that prefix itself.
function stripOwnPrefix(text: string, layerKey: string | null): string {
  return layerKey === null && text.startsWith("[kiln] ") ? text.slice("[kiln] ".length) : text;
}
