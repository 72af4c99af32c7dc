/**
 * One `Range: bytes=...` header to an R2 range, pure. Only single ranges are honoured; RFC
 * 9110 lets a server ignore a Range it does not support, so anything else means "send it all".
 */

/** An R2 range: a start with an optional length, or the last `suffix` bytes. */
export type ByteRange = { offset: number; length?: number } | { suffix: number };

/** The range asked for, or null to serve the whole object. */
export function parseByteRange(header: string | undefined | null): ByteRange | null {
  const match = /^bytes=(\d{0,16})-(\d{0,16})$/.exec(header?.trim() ?? "");
  if (!match) return null;
  const [, first, last] = match;
  if (first === "" && last === "") return null;
  if (first === "") return Number(last) > 0 ? { suffix: Number(last) } : null;
  const offset = Number(first);
  if (last === "") return { offset };
  const end = Number(last);
  return end >= offset ? { offset, length: end - offset + 1 } : null;
}

/** Whether a range starts inside an object of `sizeBytes` (else the answer is 416). */
export function rangeSatisfiable(range: ByteRange, sizeBytes: number): boolean {
  return "suffix" in range ? sizeBytes > 0 : range.offset < sizeBytes;
}

/** The `Content-Range` value and body length for a satisfiable range over `sizeBytes`. */
export function contentRange(range: ByteRange, sizeBytes: number): { header: string; offset: number; length: number } {
  const offset = "suffix" in range ? Math.max(0, sizeBytes - range.suffix) : range.offset;
  const length = "suffix" in range ? sizeBytes - offset : Math.min(range.length ?? sizeBytes - offset, sizeBytes - offset);
  return { header: `bytes ${offset}-${offset + length - 1}/${sizeBytes}`, offset, length };
}
