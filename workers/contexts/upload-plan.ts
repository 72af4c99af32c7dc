/**
 * Rules of context uploads, pure: digest syntax, R2 keys, the configurable size limit and the
 * part layout of multipart uploads. R2 requires every part but the last to be the same size
 * (at least 5 MiB) and the last to be no larger; Workers cap request bodies (100 MB on the
 * smallest plans), so Kiln caps parts at 64 MiB and fixes the layout when the upload is created.
 */

/** Smallest part R2 accepts, except for the last part. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** Largest part Kiln accepts, so every request stays well under Workers' body limits. */
export const MAX_PART_BYTES = 64 * 1024 * 1024;
/** R2's (and S3's) part-number ceiling. */
export const MAX_PARTS = 10_000;
/** Default for the `CONTEXT_MAX_BYTES` var: 2 GiB. */
export const DEFAULT_CONTEXT_MAX_BYTES = 2 * 1024 * 1024 * 1024;
/**
 * Upper bound whatever the var says: completing a multipart upload copies the staged object
 * with one `put`, and a single R2 put is at most 5 GiB (minus 5 MiB).
 */
export const HARD_CONTEXT_MAX_BYTES = 5 * 1024 * 1024 * 1024 - 5 * 1024 * 1024;
/** Job-token action that lets a runner download its workspace's contexts. */
export const CONTEXT_READ_ACTION = "context:read";

/** The content-addressed R2 key of a context tarball. */
export function contextKey(digest: string): string {
  return `contexts/sha256/${digest.slice("sha256:".length)}`;
}

/** The R2 key a multipart upload stages its parts under until the digest is verified. */
export function stagingKey(uploadId: string): string {
  return `contexts/staging/${uploadId}`;
}

/** The path runners download a context from (the build core prefixes the Worker's origin). */
export function contextDownloadPath(digest: string): string {
  return `/v1/runner/contexts/${digest}`;
}

/** The configured context size limit: `CONTEXT_MAX_BYTES` if it is a positive integer, else the default; never above R2's single-put limit. */
export function contextMaxBytes(configured: string | undefined): number {
  const n = Number(configured);
  const limit = Number.isSafeInteger(n) && n > 0 ? n : DEFAULT_CONTEXT_MAX_BYTES;
  return Math.min(limit, HARD_CONTEXT_MAX_BYTES);
}

/** Why a multipart layout was refused, for the 400 message. */
export type PlanError = { code: "part_size_out_of_range" | "too_many_parts"; message: string };

/** The number of parts of a `sizeBytes` upload in `partSizeBytes` parts, or why the layout is invalid. */
export function planParts(sizeBytes: number, partSizeBytes: number): { ok: true; partCount: number } | { ok: false; error: PlanError } {
  if (partSizeBytes < MIN_PART_BYTES || partSizeBytes > MAX_PART_BYTES) {
    return {
      ok: false,
      error: {
        code: "part_size_out_of_range",
        message: `partSizeBytes must be between ${MIN_PART_BYTES} (5 MiB, R2's minimum) and ${MAX_PART_BYTES} (64 MiB).`,
      },
    };
  }
  const partCount = Math.max(1, Math.ceil(sizeBytes / partSizeBytes));
  if (partCount > MAX_PARTS) {
    return {
      ok: false,
      error: {
        code: "too_many_parts",
        message: `${sizeBytes} bytes in parts of ${partSizeBytes} is ${partCount} parts; at most ${MAX_PARTS} are allowed. Use larger parts.`,
      },
    };
  }
  return { ok: true, partCount };
}

/** The exact size part `partNumber` (1-based) must have, or null when the number is out of range. */
export function expectedPartBytes(sizeBytes: number, partSizeBytes: number, partNumber: number): number | null {
  const partCount = Math.max(1, Math.ceil(sizeBytes / partSizeBytes));
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > partCount) return null;
  return partNumber < partCount ? partSizeBytes : sizeBytes - partSizeBytes * (partCount - 1);
}

/**
 * The Content-Length of a request as a byte count, or null when absent or malformed (a
 * streamed body of unknown length cannot be checked by R2, which needs the size up front).
 */
export function declaredLength(header: string | undefined | null): number | null {
  if (header === undefined || header === null || !/^\d{1,16}$/.test(header)) return null;
  const n = Number(header);
  return Number.isSafeInteger(n) ? n : null;
}
