/**
 * Pieces every resource sub-app shares: the error schema and standard error responses for the
 * OpenAPI document, the bearer security requirement, a JSON body-size guard and the
 * admin-only gate. Sub-apps are plain `new OpenAPIHono<AppEnv>()`: once mounted with
 * `app.route()` they inherit the root app's `defaultHook` (validation failures -> our 400).
 */
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";
import { workspaceOf } from "../auth/middleware.ts";
import { forbidden, payloadTooLarge } from "../errors.ts";

/** The one error body every route answers with on failure. */
export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "not_found" }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

const errorContent = { "application/json": { schema: ErrorSchema } };

/**
 * OpenAPI response entries for the statuses a route can fail with, each referencing the one
 * `Error` schema. 429 (request budgets, workers/rate-limit.ts) and 500 apply to every route.
 */
export function errorResponses(...statuses: (400 | 401 | 403 | 404 | 409 | 413 | 416 | 422 | 503)[]) {
  const text: Record<number, string> = {
    400: "Malformed request, unknown fields or failed validation.",
    401: "Missing or invalid bearer token.",
    403: "The token lacks the required scope or kind.",
    404: "Unknown, or owned by another workspace.",
    409: "Conflicts with the current state.",
    413: "Body larger than this endpoint accepts.",
    416: "The requested range cannot be served.",
    422: "Well-formed but refers to something missing.",
    429: "A request budget is spent; retry after `Retry-After` seconds.",
    500: "Internal error; it has been logged.",
    503: "The server is missing configuration, or is overloaded (then with `Retry-After`).",
  };
  return Object.fromEntries([...statuses, 429, 500].map((s) => [s, { description: text[s]!, content: errorContent }]));
}

/** The security requirement of every token-authenticated route. */
export const bearerSecurity = [{ bearerAuth: [] }];

/** Registers the bearer scheme on a sub-app's registry (merged into the root document on mount). */
export function registerBearerScheme(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description:
      "An API token `kiln_api_...`, an admin token `kiln_admin_...`, or the bootstrap admin token (Worker secret KILN_ADMIN_TOKEN).",
  });
}

/**
 * Rejects bodies over `maxBytes` with our 413 before anything parses them (checks
 * Content-Length, and counts chunked bodies as they stream).
 */
export function jsonBodyLimit(maxBytes: number) {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw payloadTooLarge(maxBytes);
    },
  });
}

/** Requires an admin token (the bootstrap secret or a stored `kiln_admin_` token). Run after `authenticate`. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  if (c.get("auth").kind !== "admin")
    throw forbidden("This endpoint needs an admin token (kiln_admin_... or the bootstrap KILN_ADMIN_TOKEN).");
  await next();
});

/**
 * The workspace a request acts in, or null for an admin token that names none (it then acts
 * across workspaces: shared fleets, admin tokens).
 */
export async function workspaceOrNull(c: Parameters<typeof workspaceOf>[0]): Promise<string | null> {
  const auth = c.get("auth");
  if (!auth.workspaceId && !c.req.header("x-kiln-workspace")) return null;
  return workspaceOf(c);
}

/** The body of a successful delete or revoke. */
export const OkSchema = z.object({ ok: z.literal(true) }).openapi("Ok");

/** ISO 8601 text of a drizzle timestamp column, the one time format of the API (null stays null). */
export function iso<T extends Date | null>(date: T): T extends Date ? string : string | null {
  return (date ? date.toISOString() : null) as T extends Date ? string : string | null;
}
