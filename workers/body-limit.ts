/**
 * A global cap on request bodies, under every route's own limit: no JSON endpoint accepts more
 * than `MAX_JSON_BODY_BYTES` (the largest is `POST /v1/images`), so anything bigger is refused
 * with 413 before a route (or a route added later without its own `jsonBodyLimit`) reads it.
 * Streaming uploads are left to their routes, which check `Content-Length` against their own,
 * larger limits: context objects (`CONTEXT_MAX_BYTES`), multipart parts (64 MiB), blob batches
 * (`MAX_BATCH_BYTES`) and the OCI
 * registry's blob uploads (its own error format; docs/registry.md#limits). In production
 * Cloudflare refuses bodies over the plan's limit (100 MB Free/Pro, 200 MB Business, 500 MB
 * Enterprise) before the Worker runs.
 */

import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app-env.ts";
import { ApiError, payloadTooLarge } from "./errors.ts";

/** The largest body any non-upload route accepts (`POST /v1/images`: 256 layers of specs). */
export const MAX_JSON_BODY_BYTES = 16 * 1024 * 1024;

// PUT /v1/contexts/<digest> and PUT /v1/contexts/<digest>/uploads/<id>/parts/<n>.
const CONTEXT_UPLOAD = /^\/v1\/contexts\/[^/]+(\/uploads\/[^/]+\/parts\/[^/]+)?$/;

/** The cap for a request (pure): null when its route streams the body and enforces its own limit. */
export function bodyCapFor(method: string, path: string): number | null {
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return null;
  if (path === "/v2" || path.startsWith("/v2/")) return null;
  if (method === "PUT" && CONTEXT_UPLOAD.test(path)) return null;
  // A batch of binary file blobs (decision 0022): its route caps it at MAX_BATCH_BYTES.
  if (method === "POST" && path === "/v1/contexts/blobs") return null;
  return MAX_JSON_BODY_BYTES;
}

/**
 * Middleware: 413 `payload_too_large` for bodies over `bodyCapFor` (declared or streamed), and
 * 400 `invalid_utf8` for a capped body that is not UTF-8. Every capped route reads JSON, and
 * `Request.text()`/`json()` would silently replace invalid bytes with U+FFFD (so two different
 * byte strings would mean the same request); this decodes once, strictly, and hands the text on
 * to the route through hono's body cache.
 */
export const bodyCap = createMiddleware<AppEnv>(async (c, next) => {
  const cap = bodyCapFor(c.req.method, c.req.path);
  if (cap === null) return next();
  // hono's bodyLimit trusts Content-Length when present and counts chunked bodies as they stream.
  return bodyLimit({
    maxSize: cap,
    onError: () => {
      throw payloadTooLarge(cap);
    },
  })(c, async () => {
    await decodeStrictly(c);
    await next();
  });
});

async function decodeStrictly(c: Context<AppEnv>): Promise<void> {
  if (!c.req.raw.body) return;
  const bytes = new Uint8Array(await c.req.raw.arrayBuffer());
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError(400, "invalid_utf8", "The body is not valid UTF-8. Send JSON encoded as UTF-8 (RFC 8259).");
  }
  // The raw request keeps the exact bytes (a route's own size limit still reads them); the text is cached for `c.req.text()`/`json()`.
  c.req.raw = new Request(c.req.raw, { body: bytes });
  // hono types the cache by value, but keeps (and awaits) promises in it.
  (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve(text);
}
