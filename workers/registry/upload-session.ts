/**
 * The shapes a blob upload session exchanges with its writers: the RegistryUpload object
 * keeps them, the blob writer reads and reports them (decision 0011).
 */

/** What a writer needs to continue a session. */
export type UploadState = {
  uploadId: string;
  repository: string;
  workspaceId: string;
  /** Key of the R2 multipart upload (and of the assembled object). */
  r2Key: string;
  mpuId: string | null;
  /** Bytes accepted so far: every part plus the tail. */
  offset: number;
  partCount: number;
  tailKey: string | null;
  tailSize: number;
  writes: number;
  /** sha256 of the bytes when exactly one request wrote them all. */
  firstSha256: string | null;
  /** The bytes are one plain object at `r2Key` (no multipart upload, no tail). */
  wholeObject: boolean;
};

/** A writer's update after it streamed one request's body. */
export type UploadCommit = {
  mpuId: string | null;
  newParts: { partNumber: number; etag: string }[];
  offset: number;
  tailKey: string | null;
  tailSize: number;
  /** True for a progress report in the middle of a request (the request's final commit follows). */
  progress: boolean;
  /** sha256 of everything stored so far, when the writer could hash it all in one pass. */
  sha256: string | null;
  /** The bytes are now one plain object at the session's key (default false). */
  wholeObject?: boolean;
};

/** Expected failures of the session RPC. */
export type UploadFailure = { ok: false; error: { code: "upload_unknown" | "busy" | "range_invalid" | "stale_lease"; offset?: number } };
