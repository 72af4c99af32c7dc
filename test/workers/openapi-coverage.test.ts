// Every route the Worker mounts is in /openapi.json, and every documented operation is served:
// the app's own route table (Hono's `app.routes`) against the document's paths. Exceptions are
// listed below, each with the reason it is not a one-to-one match.
import { describe, expect, it } from "vitest";
import { app } from "../../workers/index.ts";
import { call } from "./periphery-helpers.ts";

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

// `ALL` entries that are middleware or catch-all handlers rather than operations of their own.
const UNDOCUMENTED_ALL: Record<string, string> = {
  "/*": "root middleware: request id and access log, request budgets, body cap (workers/index.ts)",
  "/badges/*": "the badges' edge-cache middleware (workers/edge-cache.ts)",
  "/v2": "the OCI registry's catch-all dispatcher and its middleware, documented as one entry, GET /v2/ (the OCI Distribution API)",
  "/v2/*": "the OCI registry's catch-all dispatcher and its middleware, documented as GET /v2/ and /v2/token",
};

// Mounted handlers that serve documented operations under another path shape.
const SERVED_AS: Record<string, string[]> = {
  // Hono cannot put a parameter and a literal suffix in one path segment, so one hidden route serves both.
  "GET /badges/{workspace}/{file}": ["GET /badges/{workspace}/{tag}.svg", "GET /badges/{workspace}/{tag}.json"],
  // The registry's catch-all classifies the path itself (repository names contain slashes).
  "ALL /v2/*": ["GET /v2/", "GET /v2/token", "POST /v2/token"],
};

/** `:param` (and `:param{regex}`) to OpenAPI's `{param}`. */
function normalise(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, "{$1}");
}

/** "METHOD /path" of every mounted route, without duplicates (one entry per middleware in Hono's table). */
function mountedRoutes(): string[] {
  return [...new Set(app.routes.map((r) => `${r.method.toUpperCase()} ${normalise(r.path)}`))];
}

async function documented(): Promise<{ operations: Set<string>; paths: Set<string> }> {
  const response = await call("GET", "/openapi.json", { token: null });
  expect(response.status).toBe(200);
  const spec = await response.json<{ paths: Record<string, Record<string, unknown>> }>();
  const operations = Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => HTTP_METHODS.includes(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
  return { operations: new Set(operations), paths: new Set(Object.keys(spec.paths)) };
}

describe("the OpenAPI document covers the mounted routes", () => {
  it("documents every mounted method route", async () => {
    const { operations } = await documented();
    const missing = mountedRoutes().filter((r) => !r.startsWith("ALL ") && !operations.has(r) && !(r in SERVED_AS));
    expect(missing).toEqual([]);
  });

  it("documents every mounted ALL route's path, or says why not", async () => {
    const { paths } = await documented();
    const unexplained = mountedRoutes()
      .filter((r) => r.startsWith("ALL "))
      .map((r) => r.slice("ALL ".length))
      .filter((path) => !paths.has(path) && !(path in UNDOCUMENTED_ALL));
    expect(unexplained).toEqual([]);
  });

  it("serves every documented operation", async () => {
    const mounted = new Set(mountedRoutes());
    const servedElsewhere = new Set(Object.entries(SERVED_AS).flatMap(([route, ops]) => (mounted.has(route) ? ops : [])));
    const { operations } = await documented();
    const unserved = [...operations].filter((op) => !mounted.has(op) && !servedElsewhere.has(op));
    expect(unserved).toEqual([]);
  });

  it("lists no stale exceptions", () => {
    const mounted = new Set(mountedRoutes());
    for (const path of Object.keys(UNDOCUMENTED_ALL)) expect(mounted, path).toContain(`ALL ${path}`);
    for (const route of Object.keys(SERVED_AS)) expect(mounted, route).toContain(route);
  });

  it("compares paths in OpenAPI's form", () => {
    expect(normalise("/v1/contexts/:digest/uploads/:uploadId/parts/:n")).toBe("/v1/contexts/{digest}/uploads/{uploadId}/parts/{n}");
    expect(normalise("/v1/x/:id{[0-9]+}")).toBe("/v1/x/{id}");
  });
});
