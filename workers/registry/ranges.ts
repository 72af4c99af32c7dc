/**
 * Pure parsing of the byte ranges the registry meets: `Range` on blob GETs (one range;
 * multi-range requests are answered whole, which RFC 9110 allows) and `Content-Range` on
 * upload PATCHes (`<start>-<end>`, inclusive, no unit, as the OCI spec writes it).
 */

/** An inclusive byte range within an object. */
export type ByteRange = { offset: number; length: number };

/**
 * The satisfiable range a `Range` header asks for in an object of `size` bytes: `null` to
 * send the whole object (no header, or one we do not serve partially), `"unsatisfiable"` for 416.
 */
export function parseRangeHeader(header: string | undefined, size: number): ByteRange | null | "unsatisfiable" {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return null;
  if (match[1] === "") {
    // Suffix range: the last N bytes.
    const suffix = Number(match[2]);
    if (suffix === 0) return "unsatisfiable";
    const length = Math.min(suffix, size);
    return length === 0 ? "unsatisfiable" : { offset: size - length, length };
  }
  const start = Number(match[1]);
  if (start >= size) return "unsatisfiable";
  const end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (end < start) return "unsatisfiable";
  return { offset: start, length: end - start + 1 };
}

/**
 * The start offset a PATCH's `Content-Range` claims (`<start>-<end>`, also accepting a
 * `bytes ` prefix and `/<total>` suffix), `null` when absent, `"invalid"` when malformed.
 * The end is checked against the body length by the caller.
 */
export function parseContentRange(header: string | undefined): { start: number; end: number } | null | "invalid" {
  if (!header) return null;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!match) return "invalid";
  const start = Number(match[1]);
  const end = Number(match[2]);
  return end < start ? "invalid" : { start, end };
}

/** The `Range` header an upload status answers with: `0-<last byte>`, or `0-0` when empty (distribution's form). */
export function uploadRangeHeader(offset: number): string {
  return `0-${Math.max(offset - 1, 0)}`;
}
