/**
 * A global cap on request bodies, under every route's own limit: no JSON endpoint accepts more
 * than `MAX_JSON_BODY_BYTES` (the largest is `POST /v1/images`), so anything bigger is refused
 * with 413 before a route (or a route added later without its own `jsonBodyLimit`) reads it.
 * Streaming uploads are left to their routes, which check `Content-Length` against their own,
 * larger limits: context tarballs (`CONTEXT_MAX_BYTES`), multipart parts (64 MiB) and the OCI
 * registry's blob uploads (its own error format; docs/registry.md#limits). In production
 * Cloudflare refuses bodies over the plan's limit (100 MB Free/Pro, 200 MB Business, 500 MB
 * Enterprise) before the Worker runs.
 */
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app-env.ts";
import { payloadTooLarge } from "./errors.ts";

/** The largest body any non-upload route accepts (`POST /v1/images`: 256 layers of specs). */
export const MAX_JSON_BODY_BYTES = 16 * 1024 * 1024;

// PUT /v1/contexts/<digest> and PUT /v1/contexts/<digest>/uploads/<id>/parts/<n>.
const CONTEXT_UPLOAD = /^\/v1\/contexts\/[^/]+(\/uploads\/[^/]+\/parts\/[^/]+)?$/;

/** The cap for a request (pure): null when its route streams the body and enforces its own limit. */
export function bodyCapFor(method: string, path: string): number | null {
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return null;
  if (path === "/v2" || path.startsWith("/v2/")) return null;
  if (method === "PUT" && CONTEXT_UPLOAD.test(path)) return null;
  return MAX_JSON_BODY_BYTES;
}

/** Middleware: 413 `payload_too_large` for bodies over `bodyCapFor` (declared or streamed). */
export const bodyCap = createMiddleware<AppEnv>(async (c, next) => {
  const cap = bodyCapFor(c.req.method, c.req.path);
  if (cap === null) return next();
  // hono's bodyLimit trusts Content-Length when present and counts chunked bodies as they stream.
  return bodyLimit({
    maxSize: cap,
    onError: () => {
      throw payloadTooLarge(cap);
    },
  })(c, next);
});
