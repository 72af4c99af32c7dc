/**
 * Upload progress for `image.build()`: when the contexts to upload total more than
 * {@link PROGRESS_MIN_BYTES}, the bytes sent, the total and the rate. On a live sink (a TTY)
 * the status line follows every update (it redraws at a bounded rate); on a plain sink a
 * line every {@link PLAIN_EVERY_MS} and at each quarter; nothing on a sink that is off.
 */
import type { LogSink } from "./build-logs.ts";
import type { UploadProgress } from "./context-upload.ts";

/** Smaller uploads finish before progress would say anything useful. */
export const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;
/** Off a TTY, a progress line at least this often (besides each quarter). */
export const PLAIN_EVERY_MS = 5000;

/** The progress callback for `uploadContexts`, or undefined when `sink` shows nothing. */
export function uploadProgress(sink: Pick<LogSink, "mode" | "status">, now: () => number = Date.now): UploadProgress | undefined {
  if (sink.mode === "off") return undefined;
  let started: number | undefined;
  let lastLine = Number.NEGATIVE_INFINITY;
  let lastQuarter = -1;
  return (sent, total) => {
    if (total <= PROGRESS_MIN_BYTES) return;
    const at = now();
    started ??= at;
    const text = progressText(sent, total, at - started);
    if (sink.mode === "live") return sink.status(text);
    const quarter = Math.floor((sent / total) * 4);
    if (quarter === lastQuarter && at - lastLine < PLAIN_EVERY_MS) return;
    lastQuarter = quarter;
    lastLine = at;
    sink.status(text);
  };
}

/** "Uploading build contexts: 12.0 MiB of 40.0 MiB (30%), 5.1 MiB/s". */
export function progressText(sent: number, total: number, elapsedMs: number): string {
  const percent = Math.floor((sent / total) * 100);
  // The first half second says too little about the rate.
  const rate = elapsedMs >= 500 ? `, ${formatBytes((sent * 1000) / elapsedMs)}/s` : "";
  return `Uploading build contexts: ${formatBytes(sent)} of ${formatBytes(total)} (${percent}%)${rate}`;
}

/** `bytes` in binary units: "512 B", "3.2 KiB", "12.0 MiB", "1.5 GiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}
