/**
 * One OCI blob upload session (docs/decisions/0011-registry-upload-sessions.md). The bytes
 * never pass through this object: the Worker streams a streamed upload with a length into one
 * R2 object, and anything else into an R2 multipart upload in fixed-size parts, keeping the
 * remainder of each request in a small "tail" object. This
 * object only keeps the bookkeeping (offset, parts and their etags, tail, the digest of a
 * single-request upload), serialises writers with a lease so two PATCHes cannot interleave,
 * and cleans up an abandoned session with its alarm.
 */
import { DurableObject } from "cloudflare:workers";
import type { UploadCommit, UploadFailure, UploadState } from "../workers/registry/upload-session.ts";
import { migrate } from "./storage.ts";

export type { UploadCommit, UploadFailure, UploadState };

/** An idle session is aborted after this long (under the 24 h the registry GC leaves unnamed upload objects alone). */
export const SESSION_IDLE_MS = 12 * 60 * 60 * 1000;
/**
 * A writer that has not reported progress for this long is presumed dead and loses the
 * session (writers commit after every part, so a live one renews it every few seconds).
 */
export const LEASE_MS = 2 * 60 * 1000;

const MIGRATIONS = [
  `CREATE TABLE session (
     id INTEGER PRIMARY KEY CHECK (id = 1), upload_id TEXT NOT NULL, repository TEXT NOT NULL, workspace_id TEXT NOT NULL,
     r2_key TEXT NOT NULL, mpu_id TEXT, offset INTEGER NOT NULL DEFAULT 0, tail_key TEXT, tail_size INTEGER NOT NULL DEFAULT 0,
     writes INTEGER NOT NULL DEFAULT 0, first_sha256 TEXT, lease TEXT, lease_until INTEGER, updated_at INTEGER NOT NULL);
   CREATE TABLE parts (part_number INTEGER PRIMARY KEY, etag TEXT NOT NULL);`,
  // 1: the bytes are one plain object at r2_key (a streamed upload with a length), not multipart parts.
  "ALTER TABLE session ADD COLUMN whole_object INTEGER NOT NULL DEFAULT 0",
];

type SessionRow = {
  upload_id: string;
  repository: string;
  workspace_id: string;
  r2_key: string;
  mpu_id: string | null;
  offset: number;
  tail_key: string | null;
  tail_size: number;
  writes: number;
  first_sha256: string | null;
  lease: string | null;
  lease_until: number | null;
  whole_object: number;
};

/** The upload session object; one per upload id (`env.REGISTRY_UPLOAD.getByName(uploadId)`). */
export class RegistryUpload extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(this.#sql, MIGRATIONS));
  }

  /** Starts the session (idempotent for the same upload). */
  async open(init: { uploadId: string; repository: string; workspaceId: string; nowMs: number }): Promise<{ ok: true }> {
    this.#sql.exec(
      "INSERT INTO session (id, upload_id, repository, workspace_id, r2_key, updated_at) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
      init.uploadId,
      init.repository,
      init.workspaceId,
      `blobs/uploads/${init.uploadId}`,
      init.nowMs,
    );
    await this.ctx.storage.setAlarm(init.nowMs + SESSION_IDLE_MS);
    return { ok: true };
  }

  /** The session's progress, if it exists in `repository`. */
  status(repository: string): { ok: true; offset: number } | UploadFailure {
    const row = this.#row(repository);
    return row ? { ok: true, offset: row.offset } : { ok: false, error: { code: "upload_unknown" } };
  }

  /**
   * Takes the session for one request. `start` (from `Content-Range`) must equal the offset;
   * the lease must be passed back to `commit`, `release` or `finish`. A request that names
   * the committed offset explicitly takes over a held lease: the client is resuming after a
   * dropped connection, whose writer the runtime cancelled without releasing it.
   */
  claim(
    repository: string,
    start: number | null,
    nowMs: number,
  ): { ok: true; lease: string; state: UploadState; parts: { partNumber: number; etag: string }[] } | UploadFailure {
    const row = this.#row(repository);
    if (!row) return { ok: false, error: { code: "upload_unknown" } };
    if (start !== null && start !== row.offset) return { ok: false, error: { code: "range_invalid", offset: row.offset } };
    if (row.lease && (row.lease_until ?? 0) > nowMs && start === null) return { ok: false, error: { code: "busy", offset: row.offset } };
    const lease = crypto.randomUUID();
    this.#sql.exec("UPDATE session SET lease = ?, lease_until = ?, updated_at = ?", lease, nowMs + LEASE_MS, nowMs);
    const parts = this.#sql
      .exec<{ part_number: number; etag: string }>("SELECT part_number, etag FROM parts ORDER BY part_number")
      .toArray();
    return {
      ok: true,
      lease,
      state: this.#state(row, parts.length),
      parts: parts.map((p) => ({ partNumber: p.part_number, etag: p.etag })),
    };
  }

  /** Records a request's progress (or its end); keeps the lease for progress reports and when `keepLease` (completion follows). */
  async commit(
    lease: string,
    update: UploadCommit,
    nowMs: number,
    keepLease = false,
  ): Promise<{ ok: true; state: UploadState } | UploadFailure> {
    const row = this.#sql.exec<SessionRow>("SELECT * FROM session").toArray()[0];
    if (!row || row.lease !== lease) return { ok: false, error: { code: "stale_lease" } };
    for (const part of update.newParts) {
      this.#sql.exec("INSERT OR REPLACE INTO parts (part_number, etag) VALUES (?, ?)", part.partNumber, part.etag);
    }
    // A hash covers the bytes only while nothing unhashed was added after it.
    const sha256 = update.sha256 ?? (update.offset === row.offset ? row.first_sha256 : null);
    const hold = keepLease || update.progress;
    this.#sql.exec(
      "UPDATE session SET mpu_id = ?, offset = ?, tail_key = ?, tail_size = ?, writes = writes + ?, first_sha256 = ?, whole_object = ?, lease = ?, lease_until = ?, updated_at = ?",
      update.mpuId,
      update.offset,
      update.tailKey,
      update.tailSize,
      update.progress ? 0 : 1,
      sha256,
      update.wholeObject ? 1 : 0,
      hold ? lease : null,
      hold ? nowMs + LEASE_MS : null,
      nowMs,
    );
    await this.ctx.storage.setAlarm(nowMs + SESSION_IDLE_MS);
    const next = this.#sql.exec<SessionRow>("SELECT * FROM session").toArray()[0]!;
    const partCount = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM parts").one().n;
    return { ok: true, state: this.#state(next, partCount) };
  }

  /** Gives the session back after a failed request, so the client can resume. */
  release(lease: string): void {
    this.#sql.exec("UPDATE session SET lease = NULL, lease_until = NULL WHERE lease = ?", lease);
  }

  /** Ends a completed session: forgets it and deletes its tail object. */
  async finish(lease: string): Promise<{ ok: true } | UploadFailure> {
    const row = this.#sql.exec<SessionRow>("SELECT * FROM session").toArray()[0];
    if (!row || row.lease !== lease) return { ok: false, error: { code: "stale_lease" } };
    await this.#cleanUp(row, false);
    return { ok: true };
  }

  /** Cancels the session (`DELETE` on the upload URL): aborts the multipart upload and forgets it. */
  async cancel(repository: string): Promise<{ ok: true } | UploadFailure> {
    const row = this.#row(repository);
    if (!row) return { ok: false, error: { code: "upload_unknown" } };
    await this.#cleanUp(row, true);
    return { ok: true };
  }

  /** Aborts a session left idle for SESSION_IDLE_MS. Idempotent. */
  override async alarm(): Promise<void> {
    const row = this.#sql.exec<SessionRow>("SELECT * FROM session").toArray()[0];
    if (!row) return;
    const idleSince = this.#sql.exec<{ updated_at: number }>("SELECT updated_at FROM session").one().updated_at;
    if (Date.now() - idleSince < SESSION_IDLE_MS) {
      await this.ctx.storage.setAlarm(idleSince + SESSION_IDLE_MS);
      return;
    }
    await this.#cleanUp(row, true);
  }

  async #cleanUp(row: SessionRow, abort: boolean): Promise<void> {
    if (abort && row.mpu_id) {
      // An upload already completed or aborted throws; either way nothing is left to free.
      await this.env.REGISTRY.resumeMultipartUpload(row.r2_key, row.mpu_id)
        .abort()
        .catch(() => undefined);
    }
    // A whole object of an abandoned session, unless a writer holds the lease (a PUT may be
    // recording it as a blob this moment); what is left here, the GC's orphan sweep frees.
    const leaseLive = row.lease !== null && (row.lease_until ?? 0) > Date.now();
    if (abort && row.whole_object === 1 && !leaseLive) await this.env.REGISTRY.delete(row.r2_key);
    const tails = await this.env.REGISTRY.list({ prefix: `${row.r2_key}/tail-` });
    if (tails.objects.length) await this.env.REGISTRY.delete(tails.objects.map((o) => o.key));
    this.#sql.exec("DELETE FROM parts");
    this.#sql.exec("DELETE FROM session");
    await this.ctx.storage.deleteAlarm();
  }

  #row(repository: string): SessionRow | undefined {
    const row = this.#sql.exec<SessionRow>("SELECT * FROM session").toArray()[0];
    return row && row.repository === repository ? row : undefined;
  }

  #state(row: SessionRow, partCount: number): UploadState {
    return {
      uploadId: row.upload_id,
      repository: row.repository,
      workspaceId: row.workspace_id,
      r2Key: row.r2_key,
      mpuId: row.mpu_id,
      offset: row.offset,
      partCount,
      tailKey: row.tail_key,
      tailSize: row.tail_size,
      writes: row.writes,
      firstSha256: row.first_sha256,
      wholeObject: row.whole_object === 1,
    };
  }
}
