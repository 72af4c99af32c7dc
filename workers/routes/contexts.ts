/**
 * Build-context uploads: which digests are missing (one call), single-request uploads streamed
 * to R2 with the sha256 checked by R2, and multipart uploads through the Worker for large
 * tarballs, committed to the content-addressed key only after the whole object's digest is
 * verified (docs/decisions/0008-context-uploads.md). The runners' download route is in
 * `runner-contexts.ts`.
 */

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { SHA256_DIGEST_PATTERN } from "@kiln-build/protocol";
import { and, eq, lt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { bodyHasDigest, hasUpload, missingContexts, putVerified, recordUpload } from "../contexts/store.ts";
import {
  contextKey,
  contextMaxBytes,
  declaredLength,
  expectedPartBytes,
  MAX_PART_BYTES,
  MAX_PARTS,
  MIN_PART_BYTES,
  planParts,
  stagingKey,
} from "../contexts/upload-plan.ts";
import { contextMultipartUploads } from "../db/schema/contexts.ts";
import { ApiError, badRequest, notFound, payloadTooLarge } from "../errors.ts";
import { writeInPieces } from "../r2-writes.ts";
import { bearerSecurity, errorResponses, jsonBodyLimit, OkSchema, registerBearerScheme } from "./common.ts";

/** The context-upload sub-app, mounted at the root. */
export const contextsApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(contextsApp);

// R2 auto-aborts incomplete multipart uploads after 7 days; forget our rows for them too.
const STALE_UPLOAD_MS = 7 * 24 * 60 * 60 * 1000;
// A chain has at most 256 layers, hence at most 256 contexts; R2 heads count as subrequests.
const MAX_DIGESTS_PER_CALL = 256;

const Digest = z
  .string()
  .regex(SHA256_DIGEST_PATTERN)
  .openapi({ example: `sha256:${"ab".repeat(32)}` });
const DigestParam = z.object({ digest: Digest.openapi({ param: { name: "digest", in: "path" } }) });
const UploadParams = DigestParam.extend({
  uploadId: z
    .string()
    .regex(/^upl_[0-9a-f]{32}$/)
    .openapi({ param: { name: "uploadId", in: "path" } }),
});
const PartParams = UploadParams.extend({
  n: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PARTS)
    .openapi({ param: { name: "n", in: "path" }, type: "integer" }),
});
const StoredSchema = z.object({ digest: Digest, sizeBytes: z.number().int() }).openapi("ContextStored");
const binaryBody = (description: string) => ({
  required: true,
  description,
  content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
});
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const guard = (scope: "images:write") => [authenticate, requireScope(scope)];

contextsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/contexts/missing",
    operationId: "findMissingContexts",
    tags: ["contexts"],
    summary: "Which context digests still need uploading",
    description:
      "One call for a whole chain. Lists the digests this workspace never uploaded or whose object is gone; an unchanged resubmission gets `[]` and uploads nothing.",
    security: bearerSecurity,
    middleware: [...guard("images:write"), jsonBodyLimit(64 * 1024)],
    request: {
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .object({ digests: z.array(Digest).max(MAX_DIGESTS_PER_CALL) })
              .strict()
              .openapi("ContextsMissingRequest"),
          },
        },
      },
    },
    responses: {
      200: json(z.object({ missing: z.array(Digest) }).openapi("ContextsMissing"), "The digests to upload, in request order."),
      ...errorResponses(400, 401, 403, 413),
    },
  }),
  async (c) => {
    const { digests } = c.req.valid("json");
    return c.json({ missing: await missingContexts(c.env, await workspaceOf(c), digests) }, 200);
  },
);

contextsApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/contexts/{digest}",
    operationId: "uploadContext",
    tags: ["contexts"],
    summary: "Upload a context tarball in one request",
    description:
      "Streams the body to R2, which checks its sha256 against the digest; a mismatch is rejected with 400 `digest_mismatch` and nothing is stored. A digest this workspace already uploaded is answered 200 once the body is hashed and matches (400 `digest_mismatch` otherwise). Requires Content-Length (at most the `CONTEXT_MAX_BYTES` limit; above ~64 MiB use a multipart upload).",
    security: bearerSecurity,
    middleware: guard("images:write"),
    request: { params: DigestParam, body: binaryBody("The tarball's bytes.") },
    responses: {
      200: json(StoredSchema, "Already uploaded by this workspace; the body matched the digest and nothing changed."),
      201: json(StoredSchema, "Verified and stored."),
      ...errorResponses(400, 401, 403, 413),
    },
  }),
  async (c) => {
    const { digest } = c.req.valid("param");
    const workspaceId = await workspaceOf(c);
    const length = declaredLength(c.req.header("content-length"));
    if (length === null) throw lengthRequired();
    const limit = contextMaxBytes(c.env.CONTEXT_MAX_BYTES);
    if (length > limit) throw payloadTooLarge(limit);
    const stored = (await hasUpload(c.env, workspaceId, digest)) ? await c.env.CONTEXTS.head(contextKey(digest)) : null;
    if (stored) {
      // Already stored: the body is still checked against the digest (hashed, not stored), never trusted.
      if (!(await bodyHasDigest(c.req.raw.body, digest, length, stored.size))) throw digestMismatch(digest);
      return c.json({ digest, sizeBytes: stored.size }, 200);
    }
    const result = await putVerified(c.env.CONTEXTS, digest, c.req.raw.body ?? new Uint8Array(0), length);
    if (!result.ok) throw digestMismatch(digest);
    await recordUpload(c.env, workspaceId, digest, result.sizeBytes);
    return c.json({ digest, sizeBytes: result.sizeBytes }, 201);
  },
);

const UploadSchema = z
  .object({
    uploadId: z.string(),
    digest: Digest,
    sizeBytes: z.number().int(),
    partSizeBytes: z.number().int(),
    partCount: z.number().int(),
  })
  .openapi("ContextUpload");

contextsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/contexts/{digest}/uploads",
    operationId: "createContextUpload",
    tags: ["contexts"],
    summary: "Start a multipart context upload",
    description: `Fixes the layout up front: every part but the last is exactly \`partSizeBytes\` (${MIN_PART_BYTES}..${MAX_PART_BYTES} bytes), the last holds the rest.`,
    security: bearerSecurity,
    middleware: [...guard("images:write"), jsonBodyLimit(4 * 1024)],
    request: {
      params: DigestParam,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .object({ sizeBytes: z.number().int().min(1), partSizeBytes: z.number().int() })
              .strict()
              .openapi("ContextUploadCreate"),
          },
        },
      },
    },
    responses: { 201: json(UploadSchema, "Upload parts to `.../uploads/{uploadId}/parts/{n}`."), ...errorResponses(400, 401, 403, 413) },
  }),
  async (c) => {
    const { digest } = c.req.valid("param");
    const { sizeBytes, partSizeBytes } = c.req.valid("json");
    const workspaceId = await workspaceOf(c);
    const limit = contextMaxBytes(c.env.CONTEXT_MAX_BYTES);
    if (sizeBytes > limit) throw payloadTooLarge(limit);
    const plan = planParts(sizeBytes, partSizeBytes);
    if (!plan.ok) throw new ApiError(400, plan.error.code, plan.error.message);
    const id = `upl_${crypto.randomUUID().replaceAll("-", "")}`;
    const upload = await c.env.CONTEXTS.createMultipartUpload(stagingKey(id), { httpMetadata: { contentType: "application/x-tar" } });
    const db = drizzle(c.env.DB);
    await db.batch([
      db
        .delete(contextMultipartUploads)
        .where(
          and(
            eq(contextMultipartUploads.workspaceId, workspaceId),
            lt(contextMultipartUploads.createdAt, new Date(Date.now() - STALE_UPLOAD_MS)),
          ),
        ),
      db
        .insert(contextMultipartUploads)
        .values({ id, workspaceId, digest, sizeBytes, partSizeBytes, r2UploadId: upload.uploadId, stagingKey: stagingKey(id) }),
    ]);
    return c.json({ uploadId: id, digest, sizeBytes, partSizeBytes, partCount: plan.partCount }, 201);
  },
);

contextsApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/contexts/{digest}/uploads/{uploadId}/parts/{n}",
    operationId: "uploadContextPart",
    tags: ["contexts"],
    summary: "Upload one part of a multipart context upload",
    description:
      "The body must be exactly the part's size from the layout (Content-Length required). Parts may be sent in any order and retried.",
    security: bearerSecurity,
    middleware: guard("images:write"),
    request: { params: PartParams, body: binaryBody("The part's bytes.") },
    responses: {
      200: json(
        z.object({ partNumber: z.number().int(), etag: z.string() }).openapi("ContextUploadPart"),
        "Stored; pass the etag to complete.",
      ),
      ...errorResponses(400, 401, 403, 404, 413),
    },
  }),
  async (c) => {
    const { digest, uploadId, n } = c.req.valid("param");
    const upload = await findUpload(c.env, await workspaceOf(c), digest, uploadId);
    const length = declaredLength(c.req.header("content-length"));
    if (length === null) throw lengthRequired();
    if (length > MAX_PART_BYTES) throw payloadTooLarge(MAX_PART_BYTES);
    const expected = expectedPartBytes(upload.sizeBytes, upload.partSizeBytes, n);
    if (expected === null)
      throw badRequest(`Part ${n} is out of range for this upload.`, { partCount: Math.ceil(upload.sizeBytes / upload.partSizeBytes) });
    if (length !== expected)
      throw new ApiError(400, "part_size_mismatch", `Part ${n} must be exactly ${expected} bytes; got ${length}.`, {
        expectedBytes: expected,
      });
    const multipart = c.env.CONTEXTS.resumeMultipartUpload(upload.stagingKey, upload.r2UploadId);
    const body = c.req.raw.body;
    const part = await r2Call(() =>
      body ? writeInPieces(body, length, (value) => multipart.uploadPart(n, value)) : multipart.uploadPart(n, new Uint8Array(0)),
    );
    return c.json({ partNumber: part.partNumber, etag: part.etag }, 200);
  },
);

contextsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/contexts/{digest}/uploads/{uploadId}/complete",
    operationId: "completeContextUpload",
    tags: ["contexts"],
    summary: "Complete a multipart context upload",
    description:
      "Assembles the parts in staging, then copies the object to the content-addressed key through a put that R2 checks against the digest. A mismatch deletes everything and answers 400 `digest_mismatch`; nothing is ever visible at the digest's key unverified.",
    security: bearerSecurity,
    middleware: [...guard("images:write"), jsonBodyLimit(1024 * 1024)],
    request: {
      params: UploadParams,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .object({
                parts: z
                  .array(z.object({ partNumber: z.number().int().min(1).max(MAX_PARTS), etag: z.string().min(1).max(256) }).strict())
                  .min(1)
                  .max(MAX_PARTS),
              })
              .strict()
              .openapi("ContextUploadComplete"),
          },
        },
      },
    },
    responses: { 201: json(StoredSchema, "Verified and stored."), ...errorResponses(400, 401, 403, 404, 413) },
  }),
  async (c) => {
    const { digest, uploadId } = c.req.valid("param");
    const { parts } = c.req.valid("json");
    const workspaceId = await workspaceOf(c);
    const upload = await findUpload(c.env, workspaceId, digest, uploadId);
    const partCount = Math.max(1, Math.ceil(upload.sizeBytes / upload.partSizeBytes));
    const numbers = new Set(parts.map((p) => p.partNumber));
    if (parts.length !== partCount || numbers.size !== partCount || [...numbers].some((n) => n > partCount)) {
      throw new ApiError(400, "invalid_parts", `List each of the ${partCount} parts (1..${partCount}) exactly once.`, { partCount });
    }
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    const multipart = c.env.CONTEXTS.resumeMultipartUpload(upload.stagingKey, upload.r2UploadId);
    await r2Call(() => multipart.complete(sorted), "invalid_parts");
    try {
      const staged = await c.env.CONTEXTS.get(upload.stagingKey);
      if (!staged) throw notFound("Upload");
      if (staged.size !== upload.sizeBytes) {
        await staged.body.cancel();
        throw new ApiError(400, "size_mismatch", `The parts add up to ${staged.size} bytes, not the declared ${upload.sizeBytes}.`);
      }
      // The one copy is also the verification: R2 hashes the stream and refuses a mismatch atomically.
      const result = await putVerified(c.env.CONTEXTS, digest, staged.body, staged.size);
      if (!result.ok) throw digestMismatch(digest);
      await recordUpload(c.env, workspaceId, digest, result.sizeBytes);
      return c.json({ digest, sizeBytes: result.sizeBytes }, 201);
    } finally {
      // Success or failure, the staged object and the upload row are done with.
      await c.env.CONTEXTS.delete(upload.stagingKey);
      await drizzle(c.env.DB).delete(contextMultipartUploads).where(eq(contextMultipartUploads.id, uploadId));
    }
  },
);

contextsApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/contexts/{digest}/uploads/{uploadId}",
    operationId: "abortContextUpload",
    tags: ["contexts"],
    summary: "Abort a multipart context upload",
    security: bearerSecurity,
    middleware: guard("images:write"),
    request: { params: UploadParams },
    responses: { 200: json(OkSchema, "Aborted; its parts are deleted."), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const { digest, uploadId } = c.req.valid("param");
    const upload = await findUpload(c.env, await workspaceOf(c), digest, uploadId);
    await c.env.CONTEXTS.resumeMultipartUpload(upload.stagingKey, upload.r2UploadId)
      .abort()
      .catch(() => undefined);
    await drizzle(c.env.DB).delete(contextMultipartUploads).where(eq(contextMultipartUploads.id, uploadId));
    return c.json({ ok: true as const }, 200);
  },
);

/** The open upload `uploadId` of this workspace for `digest`, or 404 (also for other workspaces' uploads). */
async function findUpload(env: Env, workspaceId: string, digest: string, uploadId: string) {
  const row = await drizzle(env.DB)
    .select()
    .from(contextMultipartUploads)
    .where(
      and(
        eq(contextMultipartUploads.id, uploadId),
        eq(contextMultipartUploads.workspaceId, workspaceId),
        eq(contextMultipartUploads.digest, digest),
      ),
    )
    .get();
  if (!row) throw notFound("Upload");
  return row;
}

/** Runs an R2 multipart call, turning R2's refusals of client input into 4xx; anything else stays a 500. */
async function r2Call<T>(call: () => Promise<T>, invalidCode = "invalid_request"): Promise<T> {
  try {
    return await call();
  } catch (error) {
    // R2 ends its error messages with the numeric code (developers.cloudflare.com/r2/api/error-codes).
    const code = /\((\d{5})\)\s*$/.exec(String((error as Error)?.message ?? error))?.[1];
    // 10024 NoSuchUpload: aborted, completed, or expired by R2's 7-day lifecycle.
    if (code === "10024") throw notFound("Upload");
    // 10025 InvalidPart (unknown part or etag), 10011 EntityTooSmall, 10048 BadUpload, 10029 InvalidArgument.
    if (code === "10025" || code === "10011" || code === "10048" || code === "10029") {
      throw new ApiError(400, invalidCode, "R2 refused the parts: check the part numbers and etags.");
    }
    throw error;
  }
}

function lengthRequired() {
  return new ApiError(
    400,
    "length_required",
    "Send the body with a Content-Length header: R2 checks the sha256 of a body of known length only.",
  );
}

function digestMismatch(digest: string) {
  return new ApiError(
    400,
    "digest_mismatch",
    `The body's sha256 does not match ${digest}; nothing was stored. Send the exact bytes whose sha256 the path names.`,
  );
}
