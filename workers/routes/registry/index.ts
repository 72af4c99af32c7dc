/**
 * The built-in OCI registry (OCI Distribution Spec v1.1) under `/v2/`, plus its one `/v1`
 * route (repository visibility). Repository names contain slashes, so one catch-all route
 * classifies the path with the pure `parseRegistryPath` and dispatches by method. Errors use
 * the spec's body (`{ errors: [...] }`), mapped here and nowhere else. docs/registry.md.
 * An OpenAPIHono, so the `/v1` route's document entry and validation hook reach the root app;
 * the `/v2` entries are documentation only (openapi.ts).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env.ts";
import { ApiError, boundedDetails, boundedMessage, errorResponse } from "../../errors.ts";
import { registryRateLimit } from "../../rate-limit.ts";
import { callerOf, type RegistryCaller } from "../../registry/auth.ts";
import { nameInvalid, RegistryError, registryErrorBody, registryUnauthorized, unsupported } from "../../registry/errors.ts";
import { isRepositoryName, parseRegistryPath } from "../../registry/reference.ts";
import { challenge } from "../../registry/token.ts";
import { deleteBlob, readBlob } from "./blobs.ts";
import { listReferrers, putManifest, readManifest, removeManifest, tagsList } from "./manifests.ts";
import { documentRegistry } from "./openapi.ts";
import { issueToken } from "./token-endpoint.ts";
import { cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from "./uploads.ts";
import { registryVisibilityApp } from "./visibility.ts";

export { runRegistryGc } from "../../registry/gc.ts";

/** The registry sub-app; mount with `app.route("/", registryApp)`. */
export const registryApp = new OpenAPIHono<AppEnv>();
documentRegistry(registryApp);

// Request budgets (workers/rate-limit.ts), refused with the spec's TOOMANYREQUESTS. Once: hono's
// `/v2/*` also matches `/v2`, so a second `use("/v2", ...)` charged that request twice.
registryApp.use("/v2/*", registryRateLimit);
registryApp.use("/v2/*", async (c, next) => {
  await next();
  c.header("docker-distribution-api-version", "registry/2.0");
});
registryApp.all("/v2", dispatch);
registryApp.all("/v2/*", dispatch);
registryApp.route("/", registryVisibilityApp);

registryApp.onError((error, c) => {
  // Only `/v2` speaks the registry's error format; `/v1/registry/...` keeps the Kiln shape.
  if (!c.req.path.startsWith("/v2")) return errorResponse(error, c);
  const status = error instanceof ApiError ? error.status : 500;
  if (!(error instanceof ApiError)) {
    console.error(
      JSON.stringify({
        level: "error",
        msg: "registry: unhandled error",
        requestId: c.get("requestId"),
        method: c.req.method,
        path: c.req.path,
        error: String((error as Error)?.stack ?? error),
      }),
    );
  }
  // Bounded like every error body (errors.ts): messages and details can quote the request's path or body.
  const body =
    error instanceof ApiError
      ? {
          errors: registryErrorBody(error).errors.map((e) => ({
            ...e,
            message: boundedMessage(e.message),
            detail: boundedDetails(e.detail),
          })),
        }
      : { errors: [{ code: "UNKNOWN", message: "internal error; it has been logged" }] };
  const headers: Record<string, string> = {
    "docker-distribution-api-version": "registry/2.0",
    ...(error instanceof ApiError ? error.headers : {}),
  };
  return new Response(c.req.method === "HEAD" ? null : JSON.stringify(body), {
    status,
    headers: { ...headers, "content-type": "application/json" },
  });
});

async function dispatch(c: Context<AppEnv>): Promise<Response> {
  const route = parseRegistryPath(c.req.path);
  const method = c.req.method;
  if (route.kind === "token") {
    if (method !== "GET" && method !== "POST") throw unsupported(`${method} is not supported on /v2/token`);
    return issueToken(c);
  }
  const caller = await callerOf(c);
  if (route.kind === "base") {
    if (caller.kind === "anonymous") throw registryUnauthorized(challenge(new URL(c.req.url).origin, null));
    return c.json({});
  }
  if (route.kind === "unknown") throw new RegistryError(404, "NAME_UNKNOWN", `no registry endpoint at ${c.req.path}`);
  if (!isRepositoryName(route.name)) throw nameInvalid(route.name);
  return handle(c, caller, route, method);
}

function handle(
  c: Context<AppEnv>,
  caller: RegistryCaller,
  route: Exclude<ReturnType<typeof parseRegistryPath>, { kind: "token" | "base" | "unknown" }>,
  method: string,
): Promise<Response> {
  const read = method === "GET" || method === "HEAD";
  switch (route.kind) {
    case "blob":
      if (read) return readBlob(c, caller, route.name, route.digest);
      if (method === "DELETE") return deleteBlob(c, caller, route.name, route.digest);
      break;
    case "uploads":
      if (method === "POST") return startUpload(c, caller, route.name);
      break;
    case "upload":
      if (method === "PATCH") return patchUpload(c, caller, route.name, route.uploadId);
      if (method === "PUT") return putUpload(c, caller, route.name, route.uploadId);
      if (method === "GET") return uploadStatus(c, caller, route.name, route.uploadId);
      if (method === "DELETE") return cancelUpload(c, caller, route.name, route.uploadId);
      break;
    case "manifest":
      if (read) return readManifest(c, caller, route.name, route.reference);
      if (method === "PUT") return putManifest(c, caller, route.name, route.reference);
      if (method === "DELETE") return removeManifest(c, caller, route.name, route.reference);
      break;
    case "tags":
      if (method === "GET") return tagsList(c, caller, route.name);
      break;
    case "referrers":
      if (method === "GET") return listReferrers(c, caller, route.name, route.digest);
      break;
  }
  throw unsupported(`${method} is not supported here`);
}
