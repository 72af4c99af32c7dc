/**
 * Context storage: R2 objects at content-addressed keys, written only through a put that R2
 * itself checks against the expected sha256, plus the per-workspace D1 record of verified
 * uploads. Thin effectful shell over `upload-plan.ts`.
 */

import { digestHex, digestOfBytes } from "@kiln-build/protocol";
import { and, eq, inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { chunk } from "../db/in-chunks.ts";
import { contextUploads } from "../db/schema/contexts.ts";
import { putChecked } from "../r2-writes.ts";
import { contextKey } from "./upload-plan.ts";

/**
 * How long a verified object is trusted without asking R2 again. A blob deleted from R2 inside
 * this window is found by the runner's download, which deletes the row (runner-contexts.ts),
 * so the next build uploads it again; older rows are headed (decision 0022).
 */
export const CONTEXT_RECHECK_MS = 10 * 60 * 1000;

/**
 * The digests (of `digests`, order kept, duplicates dropped) this workspace still has to
 * upload: those it never uploaded, and those whose object is gone from R2 (a lifecycle rule,
 * a manual delete). One D1 round trip (batched statements) and parallel R2 heads for the rows
 * not checked within `CONTEXT_RECHECK_MS`.
 */
export async function missingContexts(env: Env, workspaceId: string, digests: readonly string[]): Promise<string[]> {
  return (await contextStatus(env, workspaceId, digests)).missing;
}

/**
 * `missingContexts` plus the size of each digest that is there (the verified upload's bytes),
 * so a submission can check the sizes its layers declare. Rows found gone from R2 are deleted;
 * rows found present are marked checked.
 */
export async function contextStatus(
  env: Env,
  workspaceId: string,
  digests: readonly string[],
  nowMs: number = Date.now(),
): Promise<{ missing: string[]; sizes: Map<string, number> }> {
  const unique = [...new Set(digests)];
  const sizes = new Map<string, number>();
  if (unique.length === 0) return { missing: [], sizes };
  const db = drizzle(env.DB);
  const queries = chunk(unique).map((part) =>
    db
      .select({ digest: contextUploads.digest, sizeBytes: contextUploads.sizeBytes, checkedAt: contextUploads.checkedAt })
      .from(contextUploads)
      .where(and(eq(contextUploads.workspaceId, workspaceId), inArray(contextUploads.digest, part))),
  );
  const results = await db.batch(queries as [(typeof queries)[number], ...(typeof queries)[number][]]);
  const stale: string[] = [];
  for (const row of results.flat()) {
    if (row.checkedAt.getTime() >= nowMs - CONTEXT_RECHECK_MS) sizes.set(row.digest, row.sizeBytes);
    else stale.push(row.digest);
  }
  const heads = await Promise.all(stale.map((d) => env.CONTEXTS.head(contextKey(d))));
  const seen: string[] = [];
  const gone: string[] = [];
  heads.forEach((head, i) => {
    if (head) {
      sizes.set(stale[i]!, head.size);
      seen.push(stale[i]!);
    } else gone.push(stale[i]!);
  });
  await markChecked(env, workspaceId, seen, gone, nowMs);
  return { missing: unique.filter((d) => !sizes.has(d)), sizes };
}

/** Marks `seen` as checked now and forgets `gone` (objects no longer in R2), in one D1 batch. */
async function markChecked(env: Env, workspaceId: string, seen: string[], gone: string[], nowMs: number): Promise<void> {
  const db = drizzle(env.DB);
  const mine = (part: string[]) => and(eq(contextUploads.workspaceId, workspaceId), inArray(contextUploads.digest, part));
  const statements = [
    ...chunk(seen).map((part) =>
      db
        .update(contextUploads)
        .set({ checkedAt: new Date(nowMs) })
        .where(mine(part)),
    ),
    ...chunk(gone).map((part) => db.delete(contextUploads).where(mine(part))),
  ];
  if (statements.length > 0) await db.batch(statements as [(typeof statements)[number], ...(typeof statements)[number][]]);
}

/**
 * Whether a request body is exactly the bytes of `digest` (`sizeBytes` long), hashed as it
 * streams and never stored: a second upload of a stored context is checked, not trusted. A
 * body of another length is cancelled unread.
 */
export async function bodyHasDigest(body: ReadableStream | null, digest: string, length: number, sizeBytes: number): Promise<boolean> {
  if (length !== sizeBytes) {
    await body?.cancel().catch(() => undefined);
    return false;
  }
  if (!body) return sizeBytes === 0 && digest === EMPTY_SHA256;
  const hasher = new crypto.DigestStream("SHA-256");
  await body.pipeTo(hasher);
  return Number(hasher.bytesWritten) === sizeBytes && digestOfBytes(await hasher.digest) === digest;
}

const EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** Whether this workspace has a verified upload of `digest` (D1 only; callers head R2 when it matters). */
export async function hasUpload(env: Env, workspaceId: string, digest: string): Promise<boolean> {
  const row = await drizzle(env.DB)
    .select({ digest: contextUploads.digest })
    .from(contextUploads)
    .where(and(eq(contextUploads.workspaceId, workspaceId), eq(contextUploads.digest, digest)))
    .get();
  return row !== undefined;
}

/**
 * Forgets the workspace's upload of `digest` once its object is found gone from R2 (a runner's
 * download missed it): the next submission then lists it as missing instead of trusting D1.
 */
export async function forgetUpload(env: Env, workspaceId: string, digest: string): Promise<void> {
  await drizzle(env.DB)
    .delete(contextUploads)
    .where(and(eq(contextUploads.workspaceId, workspaceId), eq(contextUploads.digest, digest)));
}

/** Records that the workspace uploaded `digest` (idempotent: a second upload changes nothing). */
export async function recordUpload(env: Env, workspaceId: string, digest: string, sizeBytes: number): Promise<void> {
  const checkedAt = new Date();
  await drizzle(env.DB)
    .insert(contextUploads)
    .values({ workspaceId, digest, sizeBytes, checkedAt })
    .onConflictDoUpdate({ target: [contextUploads.workspaceId, contextUploads.digest], set: { checkedAt } });
}

/**
 * Writes `body` (`length` bytes) to the digest's content-addressed key with R2 checking the
 * sha256. On a mismatch R2 stores nothing (the put is atomic) and this returns
 * `digest_mismatch`. A streamed body must be exactly `length` bytes long (a request body's
 * Content-Length, an R2 object's size).
 */
export async function putVerified(
  bucket: R2Bucket,
  digest: string,
  body: ReadableStream | ArrayBuffer | Uint8Array,
  length: number,
): Promise<{ ok: true; sizeBytes: number } | { ok: false; error: { code: "digest_mismatch" } }> {
  const object = await putChecked(bucket, contextKey(digest), body, length, digestHex(digest), {
    httpMetadata: { contentType: "application/x-tar" },
  });
  return object === null ? { ok: false, error: { code: "digest_mismatch" } } : { ok: true, sizeBytes: object.size };
}
