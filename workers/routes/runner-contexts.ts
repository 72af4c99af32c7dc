/**
 * `GET /v1/runner/contexts/:digest`: a runner downloads a layer's context manifest and each of
 * its file blobs (docs/decisions/0022) with the
 * per-job bearer token it received in the dispatched job (`callback.downloadToken`). The
 * token is looked up by sha256 in D1 `job_tokens`; it must carry the `context:read` action,
 * be unexpired, and the digest must be one its workspace uploaded, so a job of one workspace
 * can never read another workspace's context by digest. Supports `Range` so a runner can
 * resume a large download.
 */

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { SHA256_DIGEST_PATTERN } from "@kiln-build/protocol";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { hashToken } from "../auth/tokens.ts";
import { contentRange, parseByteRange, rangeSatisfiable } from "../contexts/byte-range.ts";
import { forgetUpload, hasUpload } from "../contexts/store.ts";
import { CONTEXT_READ_ACTION, contextKey } from "../contexts/upload-plan.ts";
import { jobTokens } from "../db/schema/job-tokens.ts";
import { ApiError, forbidden, notFound, unauthorized } from "../errors.ts";
import { errorResponses } from "./common.ts";

/** The runner-facing context download sub-app, mounted at the root. */
export const runnerContextsApp = new OpenAPIHono<AppEnv>();
runnerContextsApp.openAPIRegistry.registerComponent("securitySchemes", "jobToken", {
  type: "http",
  scheme: "bearer",
  description: "The per-job download token from the dispatched job's `callback.downloadToken`.",
});

const JOB_TOKEN_MESSAGE =
  "Missing, unknown or expired job token. Pass the dispatched job's `callback.downloadToken` as `Authorization: Bearer ...`.";

runnerContextsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/runner/contexts/{digest}",
    operationId: "downloadRunnerContext",
    tags: ["runner"],
    summary: "Download a context manifest or file blob (runners)",
    security: [{ jobToken: [] }],
    request: {
      params: z.object({
        digest: z
          .string()
          .regex(SHA256_DIGEST_PATTERN)
          .openapi({ param: { name: "digest", in: "path" } }),
      }),
      headers: z.object({ range: z.string().max(256).optional().openapi({ description: "One byte range, e.g. `bytes=1048576-`." }) }),
    },
    responses: {
      200: { description: "The manifest or blob.", content: { "application/x-tar": { schema: z.string().openapi({ format: "binary" }) } } },
      206: {
        description: "The requested range of the object.",
        content: { "application/x-tar": { schema: z.string().openapi({ format: "binary" }) } },
      },
      ...errorResponses(400, 401, 403, 404, 416),
    },
  }),
  async (c) => {
    const { digest } = c.req.valid("param");
    const token = /^Bearer\s+(\S{1,512})$/i.exec(c.req.header("authorization") ?? "")?.[1];
    if (!token) throw unauthorized(JOB_TOKEN_MESSAGE);
    const row = await drizzle(c.env.DB)
      .select()
      .from(jobTokens)
      .where(eq(jobTokens.hash, await hashToken(token)))
      .get();
    if (!row || row.expiresAt.getTime() <= Date.now()) throw unauthorized(JOB_TOKEN_MESSAGE);
    if (!row.actions.includes(CONTEXT_READ_ACTION)) throw forbidden(`This job token lacks the \`${CONTEXT_READ_ACTION}\` action.`);
    if (!(await hasUpload(c.env, row.workspaceId, digest))) throw notFound(`Context ${digest}`);
    const range = parseByteRange(c.req.header("range"));
    const head = range ? await c.env.CONTEXTS.head(contextKey(digest)) : null;
    if (range && head && !rangeSatisfiable(range, head.size)) {
      throw new ApiError(416, "range_not_satisfiable", `The range starts past the end of the ${head.size}-byte context.`, undefined, {
        "content-range": `bytes */${head.size}`,
      });
    }
    const object = await c.env.CONTEXTS.get(contextKey(digest), range && head ? { range } : {});
    if (!object) {
      // Gone from R2 although D1 says uploaded: forget it, so the next build uploads it again.
      await forgetUpload(c.env, row.workspaceId, digest);
      throw notFound(`Context ${digest}`);
    }
    const headers = new Headers({
      "content-type": "application/x-tar",
      etag: object.httpEtag,
      "accept-ranges": "bytes",
      "cache-control": "private, no-store",
    });
    if (range && head) {
      const served = contentRange(range, object.size);
      headers.set("content-range", served.header);
      headers.set("content-length", String(served.length));
      return new Response(object.body, { status: 206, headers });
    }
    headers.set("content-length", String(object.size));
    return new Response(object.body, { status: 200, headers });
  },
);
