/**
 * Blob reads and deletes: `HEAD|GET /v2/<name>/blobs/<digest>` (with `Range`, streamed from
 * R2, never buffered) and `DELETE` (unlinks the blob from the repository; the GC frees bytes
 * nothing refers to).
 */
import type { Context } from "hono";
import type { AppEnv } from "../../app-env.ts";
import { authorize, type RegistryCaller } from "../../registry/auth.ts";
import { blobUnknown, RegistryError } from "../../registry/errors.ts";
import { guessBlobKey, rememberBlobKey } from "../../registry/key-guesses.ts";
import { parseRangeHeader } from "../../registry/ranges.ts";
import { requireDigest } from "../../registry/reference.ts";
import { blobIn, db, unlinkBlob } from "../../registry/store.ts";

/** HEAD or GET of a blob. */
export async function readBlob(c: Context<AppEnv>, caller: RegistryCaller, name: string, digest: string): Promise<Response> {
  await authorize(c, caller, name, ["pull"]);
  requireDigest(digest);
  const rangeHeader = c.req.header("range");
  // A whole-blob GET opens the object it expects concurrently with the D1 look-up (one round trip
  // instead of two); nothing of it is read or sent unless D1 says this repository holds the blob.
  const guess = c.req.method === "GET" && !rangeHeader ? guessBlobKey(digest) : null;
  const early = guess ? c.env.REGISTRY.get(guess).catch(() => null) : null;
  const discardEarly = () => void early?.then((object) => object?.body.cancel());
  const blob = await blobIn(db(c.env), name, digest).catch((error: unknown) => {
    discardEarly();
    throw error;
  });
  if (!blob || blob.r2Key !== guess) discardEarly();
  if (!blob) throw blobUnknown(digest);
  rememberBlobKey(digest, blob.r2Key);
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "docker-content-digest": digest,
    "accept-ranges": "bytes",
    etag: `"${digest}"`,
  };
  const range = parseRangeHeader(rangeHeader, blob.sizeBytes);
  if (range === "unsatisfiable") {
    throw new RegistryError(
      416,
      "BLOB_UNKNOWN",
      "requested range not satisfiable",
      { size: blob.sizeBytes },
      { "content-range": `bytes */${blob.sizeBytes}` },
    );
  }
  if (c.req.method === "HEAD") {
    return new Response(null, { status: 200, headers: { ...headers, "content-length": String(blob.sizeBytes) } });
  }
  const opened = early && blob.r2Key === guess ? await early : null;
  const object = opened ?? (await c.env.REGISTRY.get(blob.r2Key, range ? { range } : undefined));
  if (!object) {
    console.error(JSON.stringify({ level: "error", msg: "registry blob missing in R2", digest, key: blob.r2Key }));
    throw blobUnknown(digest);
  }
  if (!range) return new Response(object.body, { status: 200, headers: { ...headers, "content-length": String(blob.sizeBytes) } });
  const end = range.offset + range.length - 1;
  return new Response(object.body, {
    status: 206,
    headers: { ...headers, "content-length": String(range.length), "content-range": `bytes ${range.offset}-${end}/${blob.sizeBytes}` },
  });
}

/** DELETE of a blob: unlinks it from the repository. */
export async function deleteBlob(c: Context<AppEnv>, caller: RegistryCaller, name: string, digest: string): Promise<Response> {
  await authorize(c, caller, name, ["delete"]);
  requireDigest(digest);
  if (!(await unlinkBlob(db(c.env), name, digest))) throw blobUnknown(digest);
  return new Response(null, { status: 202, headers: { "docker-content-digest": digest } });
}
