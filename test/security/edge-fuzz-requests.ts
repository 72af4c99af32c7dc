// Generators of malformed requests for edge-fuzz.test.ts: every operation of /openapi.json and
// the registry's /v2 routes, with hostile path parameters, queries, credentials, content types
// and bodies (wrong types, huge strings, invalid UTF-8, deep nesting). fast-check arbitraries,
// so a failure shrinks to a small request and replays from its seed.
import fc from "fast-check";

/** One operation to drive: its method, path template (`{param}`) and whether it takes a body. */
export type Operation = { method: string; path: string; params: string[]; registry: boolean };

/** A generated request, before it is sent. */
export type FuzzRequest = {
  method: string;
  path: string;
  auth: AuthKind;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
};

/** Which credential a request carries; only `bearer` and `basic` are valid. */
export type AuthKind = "none" | "bearer" | "basic" | "garbage" | "forged" | "badBasic" | "huge" | "empty";

/** Whether the request carried a valid credential. */
export const authenticated = (auth: AuthKind) => auth === "bearer" || auth === "basic";

/** The registry's routes (docs/registry.md), driven beside the documented ones. */
export const REGISTRY_OPERATIONS: Operation[] = [
  ["GET", "/v2/"],
  ["GET", "/v2/token"],
  ["POST", "/v2/token"],
  ["GET", "/v2/{name}/blobs/{digest}"],
  ["HEAD", "/v2/{name}/blobs/{digest}"],
  ["DELETE", "/v2/{name}/blobs/{digest}"],
  ["POST", "/v2/{name}/blobs/uploads/"],
  ["PATCH", "/v2/{name}/blobs/uploads/{uuid}"],
  ["PUT", "/v2/{name}/blobs/uploads/{uuid}"],
  ["GET", "/v2/{name}/blobs/uploads/{uuid}"],
  ["DELETE", "/v2/{name}/blobs/uploads/{uuid}"],
  ["GET", "/v2/{name}/manifests/{reference}"],
  ["HEAD", "/v2/{name}/manifests/{reference}"],
  ["PUT", "/v2/{name}/manifests/{reference}"],
  ["DELETE", "/v2/{name}/manifests/{reference}"],
  ["GET", "/v2/{name}/tags/list"],
  ["GET", "/v2/{name}/referrers/{digest}"],
].map(([method, path]) => ({ method: method!, path: path!, params: paramsOf(path!), registry: true }));

/** The `{name}` parameters of a path template, in order. */
export function paramsOf(template: string): string[] {
  return [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
}

type Spec = { paths: Record<string, Record<string, unknown>>; components?: { schemas?: Record<string, unknown> } };

/** Every operation of an OpenAPI document, plus the registry's. */
export function operationsOf(spec: Spec): Operation[] {
  const documented = Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => ["get", "put", "post", "delete", "patch", "head", "options"].includes(m))
      .map((m) => ({ method: m.toUpperCase(), path, params: paramsOf(path), registry: path.startsWith("/v2") })),
  );
  const seen = new Set(documented.map((o) => `${o.method} ${o.path}`));
  return [...documented, ...REGISTRY_OPERATIONS.filter((o) => !seen.has(`${o.method} ${o.path}`))];
}

/** Every property name the document's schemas declare: bodies made of known keys with wrong values. */
export function fieldNamesOf(spec: Spec): string[] {
  const names = new Set<string>();
  const walk = (node: unknown, depth: number) => {
    if (depth > 12 || node === null || typeof node !== "object") return;
    const props = (node as { properties?: Record<string, unknown> }).properties;
    if (props) for (const key of Object.keys(props)) names.add(key);
    for (const value of Object.values(node)) walk(value, depth + 1);
  };
  walk(spec, 0);
  return [...names].sort();
}

const encoder = new TextEncoder();

/** Percent-encodes bytes, every one of them (so invalid UTF-8 reaches the server as is). */
function percentBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
}

/** A path segment: plausible values, traversal, encoded NULs and invalid UTF-8, unicode, huge. */
const segment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "",
    ".",
    "..",
    "%2e%2e",
    "%2F",
    "%00",
    "%ff%fe",
    "%ed%a0%80",
    "main",
    "ws/app",
    "a/b/c/d",
    "im-1",
    "0",
    "-1",
    "1e309",
    "99999999999999999999",
    "upl_00000000000000000000000000000000",
    `sha256:${"a".repeat(64)}`,
    `sha256:${"A".repeat(64)}`,
    "sha512:abc",
    "null",
    "undefined",
    "__proto__",
  ),
  fc.string({ maxLength: 24 }).map((s) => percentBytes(encoder.encode(s))),
  fc.string({ unit: "grapheme", maxLength: 12 }).map((s) => percentBytes(encoder.encode(s))),
  fc.uint8Array({ minLength: 1, maxLength: 12 }).map(percentBytes),
  fc.integer({ min: 300, max: 3000 }).map((n) => "a".repeat(n)),
);

const headerValue = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
  fc.integer({ min: 100, max: 4000 }).map((n) => "x".repeat(n)),
);

/** Extra headers routes read: idempotency keys, workspaces, ranges, conditionals. */
const extraHeaders = fc.dictionary(
  fc.constantFrom("idempotency-key", "x-kiln-workspace", "content-range", "range", "if-none-match", "accept", "docker-upload-uuid"),
  headerValue,
  { maxKeys: 3 },
);

const contentType = fc.constantFrom(
  undefined,
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "text/plain",
  "application/octet-stream",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=zz",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/x-tar",
  "*/*",
);

/**
 * Bodies shaped like real ones (a runner event, an image, a context list, a token) whose arrays
 * hold `n` invalid elements: one validation issue each, the amplification an error body must not pass on.
 */
const HOSTILE_TEMPLATES: ((n: number) => unknown)[] = [
  (n) => ({
    type: "logs",
    jobId: "bd-x",
    attemptId: "at-x",
    fencingToken: 1,
    seq: -1,
    entries: Array(n).fill({ layerKey: 1, stream: "up", data: 2 }),
  }),
  (n) => ({ builderVersion: "2025.06", layers: Array(n).fill({ dockerfileCommands: 1, gpu: { type: "ZZ999", count: 0 } }) }),
  (n) => ({ digests: Array(n).fill("sha256:nope") }),
  (n) => ({ name: "x", scopes: Array(n).fill("root") }),
  (n) => ({ parts: Array(n).fill({ partNumber: "one", etag: 2 }) }),
];

/** Bodies: none, random JSON, known keys with wrong values, huge strings, invalid UTF-8, deep nesting, raw bytes. */
function bodies(fields: readonly string[]): fc.Arbitrary<Uint8Array | undefined> {
  const json = (value: unknown) => encoder.encode(JSON.stringify(value) ?? "null");
  const key = fields.length > 0 ? fc.oneof(fc.constantFrom(...fields), fc.string({ maxLength: 8 })) : fc.string({ maxLength: 8 });
  return fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }).map(json),
    fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }).map(json),
    fc.tuple(key, fc.integer({ min: 10_000, max: 200_000 })).map(([k, n]) => json({ [k]: "x".repeat(n) })),
    fc.tuple(key, fc.integer({ min: 100, max: 5000 })).map(([k, n]) => json({ [k]: Array(n).fill({ [k]: -1 }) })),
    fc.integer({ min: 10, max: 3000 }).map((n) => encoder.encode(`${"[".repeat(n)}${"]".repeat(n)}`)),
    fc.tuple(key, fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([k, bad]) => {
      const prefix = encoder.encode(`{"${k.replace(/["\\]/g, "")}":"`);
      return new Uint8Array([...prefix, 0xff, ...bad, 0xc0, 0x80, ...encoder.encode('"}')]);
    }),
    fc.integer({ min: 200, max: 5000 }).map((n) => json(Object.fromEntries(Array.from({ length: n }, (_, i) => [`unknown_${i}`, i])))),
    fc.tuple(fc.constantFrom(...HOSTILE_TEMPLATES), fc.integer({ min: 100, max: 4000 })).map(([template, n]) => json(template(n))),
    fc.uint8Array({ maxLength: 512 }),
    fc.constantFrom("{", "}", "nul", '{"a":1,}', "\u0000", '"\\ud800"', "[1,2", '{"__proto__":{"x":1}}').map((s) => encoder.encode(s)),
  );
}

/** Requests for one operation: mostly its own method and shape, sometimes any method, wrong auth or body. */
export function requestsFor(op: Operation, fields: readonly string[]): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      method: fc.oneof(
        { weight: 4, arbitrary: fc.constant(op.method) },
        fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
      ),
      values: fc.array(segment, { minLength: op.params.length, maxLength: op.params.length }),
      query: fc.array(
        fc.tuple(
          fc.constantFrom("n", "last", "limit", "cursor", "digest", "scope", "service", "mount", "from", "artifactType", "x"),
          segment,
        ),
        {
          maxLength: 3,
        },
      ),
      auth: fc.constantFrom<AuthKind>("none", "bearer", "bearer", "basic", "garbage", "forged", "badBasic", "huge", "empty"),
      contentType,
      headers: extraHeaders,
      body: bodies(fields),
    })
    .map(({ method, values, query, auth, contentType: type, headers, body }) => {
      let path = op.path;
      values.forEach((value, i) => {
        path = path.replace(`{${op.params[i]}}`, value);
      });
      const search = query.map(([k, v]) => `${k}=${v}`).join("&");
      const withBody = method !== "GET" && method !== "HEAD" ? body : undefined;
      return {
        method,
        path: search ? `${path}?${search}` : path,
        auth,
        headers: { ...headers, ...(type ? { "content-type": type } : {}) },
        body: withBody,
      };
    });
}

/** The Authorization header of `auth` (valid kinds use `token`). */
export function authorization(auth: AuthKind, token: string): string | undefined {
  switch (auth) {
    case "none":
      return undefined;
    case "bearer":
      return `Bearer ${token}`;
    case "basic":
      return `Basic ${btoa(`fuzz:${token}`)}`;
    case "garbage":
      return "Bearer not-a-token";
    case "forged":
      return `Bearer kiln_api_${"A".repeat(32)}ABCDEF`;
    case "badBasic":
      return "Basic !!!not-base64!!!";
    case "huge":
      return `Bearer ${"k".repeat(6000)}`;
    case "empty":
      return "";
  }
}
