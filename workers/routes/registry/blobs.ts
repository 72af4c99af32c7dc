/**
 * Blob reads and deletes: `HEAD|GET /v2/<name>/blobs/<digest>` (with `Range`, streamed from
 * R2, never buffered) and `DELETE` (unlinks the blob from the repository; the GC frees bytes
 * nothing refers to).
 */
import type { Context } from "hono";
import type { AppEnv } from "../../app-env.ts";
import { authorize, type RegistryCaller } from "../../registry/auth.ts";
import { blobUnknown, RegistryError } from "../../registry/errors.ts";
import { parseRangeHeader } from "../../registry/ranges.ts";
import { requireDigest } from "../../registry/reference.ts";
import { blobIn, db, unlinkBlob } from "../../registry/store.ts";

/** HEAD or GET of a blob. */
export async function readBlob(c: Context<AppEnv>, caller: RegistryCaller, name: string, digest: string): Promise<Response> {
  await authorize(c, caller, name, ["pull"]);
  requireDigest(digest);
  const blob = await blobIn(db(c.env), name, digest);
  if (!blob) throw blobUnknown(digest);
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "docker-content-digest": digest,
    "accept-ranges": "bytes",
    etag: `"${digest}"`,
  };
  const range = parseRangeHeader(c.req.header("range"), blob.sizeBytes);
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
  const object = await c.env.REGISTRY.get(blob.r2Key, range ? { range } : undefined);
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
