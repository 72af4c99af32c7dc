/**
 * Per-file contexts (docs/decisions/0022): `PUT /v1/contexts/manifests/:digest` stores a
 * layer's context manifest and answers which of the blobs it names the workspace still has
 * to upload; `POST /v1/contexts/blobs` stores many small file blobs in one request, each
 * checked by R2 against its sha256. Larger blobs use the single-object and multipart routes
 * of `contexts.ts`, like any content-addressed context object.
 */

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  decodeBlobBatch,
  decodeContextManifest,
  digestOfBytes,
  MAX_BATCH_BYTES,
  MAX_MANIFEST_BYTES,
  manifestBlobs,
  SHA256_DIGEST_PATTERN,
} from "@kiln-build/protocol";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { recordUploads } from "../contexts/manifests.ts";
import { missingContexts, putVerified } from "../contexts/store.ts";
import { ApiError } from "../errors.ts";
import { bearerSecurity, errorResponses, jsonBodyLimit, registerBearerScheme } from "./common.ts";

/** The manifest and blob-batch sub-app, mounted at the root. */
export const contextManifestsApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(contextManifestsApp);

const Digest = z
  .string()
  .regex(SHA256_DIGEST_PATTERN)
  .openapi({ example: `sha256:${"ab".repeat(32)}` });
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const guard = [authenticate, requireScope("images:write")];

contextManifestsApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/contexts/manifests/{digest}",
    operationId: "putContextManifest",
    tags: ["contexts"],
    summary: "Store a context manifest; learn which of its blobs to upload",
    description:
      "The body is the manifest's canonical JSON (RFC 8785), whose sha256 is the digest. It is validated (sorted entries, every parent a directory, safe paths) and stored; the answer lists the blobs it names that this workspace has not uploaded (or whose object is gone). A submission whose manifest still lacks blobs answers 422 `context_not_found` listing them.",
    security: bearerSecurity,
    middleware: [...guard, jsonBodyLimit(MAX_MANIFEST_BYTES)],
    request: {
      params: z.object({ digest: Digest.openapi({ param: { name: "digest", in: "path" } }) }),
      body: { required: true, description: "The manifest's canonical JSON.", content: { "application/json": { schema: z.any() } } },
    },
    responses: {
      201: json(z.object({ digest: Digest, missing: z.array(Digest) }).openapi("ContextManifestStored"), "Stored."),
      ...errorResponses(400, 401, 403, 413),
    },
  }),
  async (c) => {
    const { digest } = c.req.valid("param");
    const workspaceId = await workspaceOf(c);
    const bytes = new Uint8Array(await c.req.raw.arrayBuffer());
    if (digestOfBytes(await crypto.subtle.digest("SHA-256", bytes)) !== digest) throw digestMismatch(digest);
    const manifest = decodeContextManifest(bytes);
    if (!manifest) {
      throw new ApiError(400, "invalid_manifest", "The body is not a valid context manifest (docs/decisions/0022-per-file-contexts.md).");
    }
    const stored = await putVerified(c.env.CONTEXTS, digest, bytes, bytes.byteLength);
    if (!stored.ok) throw digestMismatch(digest);
    await recordUploads(c.env, workspaceId, [{ digest, sizeBytes: stored.sizeBytes }]);
    const missing = await missingContexts(
      c.env,
      workspaceId,
      manifestBlobs(manifest).map((b) => b.digest),
    );
    return c.json({ digest, missing }, 201);
  },
);

contextManifestsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/contexts/blobs",
    operationId: "uploadContextBlobs",
    tags: ["contexts"],
    summary: "Upload many small file blobs in one request",
    description: `A batch body: a 4-byte big-endian index length, the index as JSON (\`[{digest, sizeBytes}]\`, at most 256 blobs), then each blob's bytes in index order; at most ${MAX_BATCH_BYTES} bytes in all. R2 checks every blob against its digest; any mismatch answers 400 \`digest_mismatch\` naming it (the blobs before it may be stored).`,
    security: bearerSecurity,
    middleware: [...guard, jsonBodyLimit(MAX_BATCH_BYTES)],
    request: {
      body: {
        required: true,
        content: { "application/vnd.kiln.blob-batch": { schema: z.string().openapi({ format: "binary" }) } },
      },
    },
    responses: {
      201: json(
        z.object({ stored: z.array(z.object({ digest: Digest, sizeBytes: z.number().int() })) }).openapi("ContextBlobsStored"),
        "Every blob verified and stored.",
      ),
      ...errorResponses(400, 401, 403, 413),
    },
  }),
  async (c) => {
    const workspaceId = await workspaceOf(c);
    const batch = decodeBlobBatch(new Uint8Array(await c.req.raw.arrayBuffer()));
    if (!batch.ok) throw new ApiError(400, "invalid_batch", `Invalid blob batch: ${batch.message}.`);
    const stored: { digest: string; sizeBytes: number }[] = [];
    try {
      // Sequential puts in groups: R2 calls count against the request's subrequest budget.
      for (let i = 0; i < batch.blobs.length; i += 32) {
        const group = batch.blobs.slice(i, i + 32);
        const results = await Promise.all(group.map((b) => putVerified(c.env.CONTEXTS, b.digest, b.bytes, b.bytes.byteLength)));
        const bad = results.findIndex((r) => !r.ok);
        results.forEach((r, j) => {
          if (r.ok && j < (bad < 0 ? results.length : bad)) stored.push({ digest: group[j]!.digest, sizeBytes: r.sizeBytes });
        });
        if (bad >= 0) throw digestMismatch(group[bad]!.digest);
      }
    } finally {
      await recordUploads(c.env, workspaceId, stored);
    }
    return c.json({ stored }, 201);
  },
);

function digestMismatch(digest: string) {
  return new ApiError(
    400,
    "digest_mismatch",
    `The bytes sent for ${digest} do not have that sha256; nothing was stored for it. Send the exact bytes whose sha256 the digest names.`,
    { digest },
  );
}
