/**
 * Blob uploads: `POST /v2/<name>/blobs/uploads/` (start a session, monolithic `?digest=`, or
 * cross-repository `?mount=&from=`), `PATCH` (a chunk), `PUT ?digest=` (finish), `GET`
 * (progress, for resuming) and `DELETE` (cancel). Session bookkeeping lives in the
 * RegistryUpload Durable Object, bytes in R2 (docs/decisions/0011-registry-upload-sessions.md).
 */
import type { Context } from "hono";
import type { RegistryUpload, UploadCommit, UploadFailure } from "../../../durable-objects/registry-upload.ts";
import type { AppEnv } from "../../app-env.ts";
import { authorize, ownerWorkspace, type RegistryCaller } from "../../registry/auth.ts";
import { assemble, blobKey, PART_BYTES, putMonolithic, type RequestShape, writeRequest } from "../../registry/blob-writer.ts";
import { digestInvalid, type RegistryError, rangeInvalid, uploadInvalid, uploadUnknown } from "../../registry/errors.ts";
import { rememberBlobKey } from "../../registry/key-guesses.ts";
import { parseContentRange, uploadRangeHeader } from "../../registry/ranges.ts";
import { isRepositoryName, requireDigest } from "../../registry/reference.ts";
import { db, mountBlob, recordBlob } from "../../registry/store.ts";

const session = (env: Env, uploadId: string) => env.REGISTRY_UPLOAD.getByName(uploadId);

function uploadHeaders(name: string, uploadId: string, offset: number): Record<string, string> {
  return {
    location: `/v2/${name}/blobs/uploads/${uploadId}`,
    range: uploadRangeHeader(offset),
    "docker-upload-uuid": uploadId,
    "content-length": "0",
  };
}

function created(name: string, digest: string): Response {
  return new Response(null, {
    status: 201,
    headers: { location: `/v2/${name}/blobs/${digest}`, "docker-content-digest": digest, "content-length": "0" },
  });
}

function failure(name: string, uploadId: string, result: UploadFailure): RegistryError {
  const { code, offset } = result.error;
  if (code === "upload_unknown") return uploadUnknown();
  if (code === "stale_lease") return uploadInvalid("the upload was taken over by another request; check its status and resume");
  const why = code === "busy" ? "another request is writing to this upload" : "Content-Range does not start at the upload's offset";
  return rangeInvalid(why, uploadHeaders(name, uploadId, offset ?? 0));
}

/** Reports a stored part to the session; a lost lease (another request took over) stops this one. */
async function progress(stub: DurableObjectStub<RegistryUpload>, lease: string, update: UploadCommit): Promise<void> {
  const result = await stub.commit(lease, update, Date.now());
  if (!result.ok) throw new Error(`upload session lease lost: ${result.error.code}`);
}

/** The body's declared length and whether it came as a chunk (`Content-Range`) of a chunked upload. */
function shapeOf(c: Context<AppEnv>): RequestShape {
  const length = c.req.header("content-length");
  return {
    contentLength: length !== undefined && /^\d+$/.test(length) ? Number(length) : null,
    hasContentRange: c.req.header("content-range") !== undefined,
  };
}

/** True when the request carries a body (a length above zero, or a chunked body). */
function hasBody(c: Context<AppEnv>): boolean {
  const length = c.req.header("content-length");
  return length !== undefined ? Number(length) > 0 : c.req.raw.body !== null;
}

/** POST: starts an upload, stores a monolithic blob, or mounts one from another repository. */
export async function startUpload(c: Context<AppEnv>, caller: RegistryCaller, name: string): Promise<Response> {
  await authorize(c, caller, name, ["push"]);
  // Looked up while a monolithic body streams into R2 (one D1 round trip off the critical path). Without an
  // owner the request fails after the put; the verified bytes then stay unnamed until the GC's orphan sweep.
  const owner = ownerWorkspace(c.env, name);
  owner.catch(() => undefined);
  const now = Date.now();
  const mount = c.req.query("mount");
  const from = c.req.query("from");
  if (mount && from && isRepositoryName(from)) {
    requireDigest(mount);
    // Mounting needs pull on the source: without it this silently becomes a normal upload.
    const canPull = await authorize(c, caller, from, ["pull"]).then(
      () => true,
      () => false,
    );
    if (canPull && (await mountBlob(db(c.env), from, name, await owner, mount, now))) return created(name, mount);
  }
  const digest = c.req.query("digest");
  const uploadId = crypto.randomUUID();
  if (digest !== undefined) {
    requireDigest(digest);
    const { contentLength } = shapeOf(c);
    if (contentLength !== null) {
      const stored = await putMonolithic(c.env.REGISTRY, digest, c.req.raw.body ?? new Uint8Array(0), contentLength);
      const workspaceId = await owner;
      if (!stored) throw digestInvalid("the content does not match the digest; nothing was stored", { digest });
      rememberBlobKey(digest, await recordBlob(db(c.env), name, workspaceId, digest, stored.sizeBytes, blobKey(digest), now));
      return created(name, digest);
    }
    await session(c.env, uploadId).open({ uploadId, repository: name, workspaceId: await owner, nowMs: now });
    return finishUpload(c, caller, name, uploadId, true);
  }
  await session(c.env, uploadId).open({ uploadId, repository: name, workspaceId: await owner, nowMs: now });
  return new Response(null, { status: 202, headers: { ...uploadHeaders(name, uploadId, 0), "oci-chunk-min-length": String(PART_BYTES) } });
}

/** PATCH: appends one chunk (streamed into R2 parts). */
export async function patchUpload(c: Context<AppEnv>, caller: RegistryCaller, name: string, uploadId: string): Promise<Response> {
  await authorize(c, caller, name, ["push"]);
  const range = parseContentRange(c.req.header("content-range"));
  if (range === "invalid") throw rangeInvalid("malformed Content-Range", {});
  const length = c.req.header("content-length");
  if (range && length !== undefined && range.end - range.start + 1 !== Number(length)) {
    throw rangeInvalid("Content-Range does not match Content-Length", {});
  }
  const stub = session(c.env, uploadId);
  const claim = await stub.claim(name, range?.start ?? null, Date.now());
  if (!claim.ok) throw failure(name, uploadId, claim);
  let appended: Awaited<ReturnType<typeof writeRequest>>;
  try {
    appended = await writeRequest(c.env.REGISTRY, claim.state, c.req.raw.body, shapeOf(c), (update) => progress(stub, claim.lease, update));
  } catch (e) {
    stub.release(claim.lease);
    throw e;
  }
  const committed = await stub.commit(claim.lease, appended.commit, Date.now());
  if (!committed.ok) throw failure(name, uploadId, committed);
  if (appended.error) throw uploadInvalid(`the chunk was cut short; ${committed.state.offset} bytes are kept, resume from there`);
  return new Response(null, { status: 202, headers: uploadHeaders(name, uploadId, committed.state.offset) });
}

/** PUT ?digest=: optional last chunk, then verify and commit the blob. */
export async function putUpload(c: Context<AppEnv>, caller: RegistryCaller, name: string, uploadId: string): Promise<Response> {
  await authorize(c, caller, name, ["push"]);
  return finishUpload(c, caller, name, uploadId, false);
}

async function finishUpload(
  c: Context<AppEnv>,
  _caller: RegistryCaller,
  name: string,
  uploadId: string,
  monolithic: boolean,
): Promise<Response> {
  const digest = c.req.query("digest");
  if (!digest) throw digestInvalid("the digest query parameter is required to finish an upload");
  requireDigest(digest);
  const range = parseContentRange(c.req.header("content-range"));
  if (range === "invalid") throw rangeInvalid("malformed Content-Range", {});
  const stub = session(c.env, uploadId);
  const claim = await stub.claim(name, range?.start ?? null, Date.now());
  if (!claim.ok) throw failure(name, uploadId, claim);
  const { lease } = claim;
  let state = claim.state;
  let parts = claim.parts;
  try {
    const d = db(c.env);
    const { contentLength } = shapeOf(c);
    if (hasBody(c) && state.offset === 0 && state.writes === 0 && contentLength !== null) {
      // The whole blob in this one request: write it straight to its content-addressed key.
      const stored = await putMonolithic(c.env.REGISTRY, digest, c.req.raw.body!, contentLength);
      if (!stored) {
        await stub.finish(lease);
        throw digestInvalid("the content does not match the digest; nothing was stored", { digest });
      }
      rememberBlobKey(digest, await recordBlob(d, name, state.workspaceId, digest, stored.sizeBytes, blobKey(digest), Date.now()));
      await stub.finish(lease);
      return created(name, digest);
    }
    if (hasBody(c) || monolithic) {
      const appended = await writeRequest(c.env.REGISTRY, state, c.req.raw.body, shapeOf(c), (update) => progress(stub, lease, update));
      const committed = await stub.commit(lease, appended.commit, Date.now(), !appended.error);
      if (!committed.ok) throw failure(name, uploadId, committed);
      if (appended.error) throw uploadInvalid(`the chunk was cut short; ${committed.state.offset} bytes are kept, resume from there`);
      state = committed.state;
      parts = [...parts, ...appended.newParts];
    }
    const assembled = await assemble(c.env.REGISTRY, state, parts, digest);
    if (!assembled.ok) {
      await stub.finish(lease);
      throw digestInvalid("the uploaded content does not match the digest; nothing was stored", { digest, actual: assembled.actual });
    }
    const key = await recordBlob(d, name, state.workspaceId, digest, assembled.sizeBytes, assembled.r2Key, Date.now());
    rememberBlobKey(digest, key);
    // Another upload stored the same content first: keep theirs, drop this copy.
    if (key !== assembled.r2Key) await c.env.REGISTRY.delete(assembled.r2Key);
    await stub.finish(lease);
    return created(name, digest);
  } catch (e) {
    stub.release(lease);
    throw e;
  }
}

/** GET: the upload's progress, so a client can resume after a failure. */
export async function uploadStatus(c: Context<AppEnv>, caller: RegistryCaller, name: string, uploadId: string): Promise<Response> {
  await authorize(c, caller, name, ["push"]);
  const status = await session(c.env, uploadId).status(name);
  if (!status.ok) throw uploadUnknown();
  return new Response(null, { status: 204, headers: uploadHeaders(name, uploadId, status.offset) });
}

/** DELETE: cancels the upload and frees its bytes. */
export async function cancelUpload(c: Context<AppEnv>, caller: RegistryCaller, name: string, uploadId: string): Promise<Response> {
  await authorize(c, caller, name, ["push"]);
  const result = await session(c.env, uploadId).cancel(name);
  if (!result.ok) throw uploadUnknown();
  return new Response(null, { status: 204 });
}
