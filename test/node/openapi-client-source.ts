/**
 * Writes the TypeScript a client of the API would: a fetch wrapper typed by the `paths` and
 * `operations` openapi-typescript generates from /openapi.json, and one call per operation of
 * the document. Every path and method is a literal checked against `paths`, so a route that is
 * not in the document (or a wrong method) fails to type-check. Used by openapi-client.test.ts.
 */

/** One operation of the document. */
export type DocumentOperation = { method: string; path: string; operationId: string };

/** The methods an OpenAPI path item can hold. */
export const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

/** Every operation of an OpenAPI document, in document order. */
export function operationsOf(spec: { paths: Record<string, Record<string, { operationId?: string }>> }): DocumentOperation[] {
  return Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => (HTTP_METHODS as readonly string[]).includes(method))
      .map(([method, op]) => ({ method, path, operationId: op.operationId ?? "" })),
  );
}

// The typed wrapper: the part of a generated client every call goes through.
const WRAPPER = `import type { operations, paths } from "./schema.ts";

type HttpMethod = ${HTTP_METHODS.map((m) => JSON.stringify(m)).join(" | ")};
/** The methods a path defines (openapi-typescript types the others \`?: never\`). */
export type MethodOf<P extends keyof paths> = { [M in HttpMethod]: [paths[P][M]] extends [undefined] ? never : M }[HttpMethod];
/** The operation at a path and method. */
export type Op<P extends keyof paths, M extends MethodOf<P>> = NonNullable<paths[P][M]>;
type BodyOf<O> = O extends { requestBody?: infer B }
  ? [B] extends [undefined]
    ? {}
    : NonNullable<B> extends { content: infer C }
      ? undefined extends B ? { body?: C[keyof C] } : { body: C[keyof C] }
      : {}
  : {};
/** What a call sends: the operation's parameters and, if it has one, its body. */
export type Init<O> = (O extends { parameters: infer Par } ? { params: Par } : {}) & BodyOf<O>;
type SuccessStatus = 200 | 201 | 202 | 204 | 206;
type Success<O> = O extends { responses: infer R } ? { [S in keyof R & SuccessStatus]: R[S] extends { content: infer C } ? C[keyof C] : null }[keyof R & SuccessStatus] : never;
/** Type equality, for checking that a path's method is the operation its operationId names. */
export type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export function assertSame<T extends true>(_proof?: T): void {}
export type { operations };

type Params = { path?: Record<string, string | number>; query?: Record<string, unknown>; header?: Record<string, string> };

/** A fetch typed by the document: only documented paths and their methods compile. */
export async function api<P extends keyof paths, M extends MethodOf<P>>(
  baseUrl: string,
  method: M,
  path: P,
  init: Init<Op<P, M>>,
): Promise<Success<Op<P, M>>> {
  const { params, body } = init as { params?: Params; body?: unknown };
  let url = String(path);
  for (const [name, value] of Object.entries(params?.path ?? {})) url = url.replace(\`{\${name}}\`, encodeURIComponent(String(value)));
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params?.query ?? {})) if (value !== undefined) query.append(name, String(value));
  const response = await fetch(\`\${baseUrl}\${url}\${query.size ? \`?\${query}\` : ""}\`, {
    method: method.toUpperCase(),
    headers: { ...params?.header, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return (await response.json()) as Success<Op<P, M>>;
}
`;

// Hand-written calls that must (or, marked, must not) compile: the types say what the API answers.
const SPOT_CHECKS = `
export async function spotChecks(baseUrl: string): Promise<void> {
  const image = await api(baseUrl, "get", "/v1/images/{id}", { params: { path: { id: "im-1" } } });
  const status: "queued" | "building" | "succeeded" | "failed" | "cancelled" | "timeout" = image.status;
  const tags = await api(baseUrl, "get", "/v1/tags", { params: { query: { limit: 10 } } });
  const firstTag: string | undefined = tags.tags[0]?.name;
  const me = await api(baseUrl, "get", "/v1/whoami", { params: {} });
  const workspace: string | undefined = me.workspace?.name;
  const kind: "admin" | "api" = me.token.kind;
  await api(baseUrl, "put", "/v1/tags/{name}", { params: { path: { name: "main" } }, body: { imageId: "im-1", public: true } });
  // @ts-expect-error: not a documented path
  await api(baseUrl, "get", "/v1/not-documented", { params: {} });
  // @ts-expect-error: /v1/tags/{name} has no PATCH
  await api(baseUrl, "patch", "/v1/tags/{name}", { params: { path: { name: "main" } } });
  // @ts-expect-error: the path parameter is required
  await api(baseUrl, "get", "/v1/images/{id}", { params: {} });
  // @ts-expect-error: PUT /v1/tags/{name} needs imageId
  await api(baseUrl, "put", "/v1/tags/{name}", { params: { path: { name: "main" } }, body: { public: true } });
  void [status, firstTag, workspace, kind];
}
`;

/** The client source: the wrapper, one typed call per operation, and the spot checks. */
export function clientSource(operations: DocumentOperation[]): string {
  const calls = operations.map(({ method, path, operationId }) => {
    const op = `Op<${JSON.stringify(path)}, ${JSON.stringify(method)}>`;
    return [
      `/** ${operationId}: ${method.toUpperCase()} ${path} */`,
      `export function ${operationId}(baseUrl: string, init: Init<${op}>) {`,
      `  assertSame<Same<${op}, operations[${JSON.stringify(operationId)}]>>();`,
      `  return api(baseUrl, ${JSON.stringify(method)}, ${JSON.stringify(path)}, init);`,
      "}",
    ].join("\n");
  });
  return `${WRAPPER}\n${calls.join("\n\n")}\n${SPOT_CHECKS}`;
}

/** A strict tsconfig for the generated directory (nothing from the repository is included). */
export const STRICT_TSCONFIG = {
  compilerOptions: {
    target: "es2023",
    module: "esnext",
    moduleResolution: "bundler",
    lib: ["es2023", "dom", "dom.iterable"],
    types: [],
    strict: true,
    noEmit: true,
    allowImportingTsExtensions: true,
    verbatimModuleSyntax: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noImplicitReturns: true,
    noFallthroughCasesInSwitch: true,
    skipLibCheck: false,
  },
  include: ["*.ts"],
};
