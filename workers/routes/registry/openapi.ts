/**
 * The OpenAPI entries of the OCI registry under `/v2/`. Documentation only: every `/v2` request
 * is served by the one catch-all dispatcher in index.ts (repository names contain slashes, which
 * an OpenAPI path parameter cannot), so the document describes the API version check and the
 * token endpoint as operations and names the rest of the OCI Distribution API in their text.
 */
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../app-env.ts";

const SPEC = "https://github.com/opencontainers/distribution-spec/blob/main/spec.md";

/** The OCI error body (`{ errors: [...] }`): the `/v2` API's own format, not Kiln's `{ error }`. */
const RegistryErrorsSchema = z
  .object({
    errors: z.array(
      z.object({
        code: z.string().openapi({ example: "NAME_UNKNOWN" }),
        message: z.string(),
        detail: z.unknown().optional(),
      }),
    ),
  })
  .openapi("RegistryErrors", { description: `The OCI Distribution error body (${SPEC}#error-codes).` });

const TokenSchema = z
  .object({
    token: z.string(),
    access_token: z.string().openapi({ description: "The same token (OAuth2 clients read this field)." }),
    expires_in: z.number().int(),
    issued_at: z.string(),
  })
  .openapi("RegistryToken");

const ociError = (description: string) => ({ description, content: { "application/json": { schema: RegistryErrorsSchema } } });

const ENDPOINTS = [
  "`GET /v2/`: API version check (this operation)",
  "`GET|POST /v2/token`: the Docker token flow",
  "`GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`",
  "`GET|HEAD|DELETE /v2/<name>/blobs/<digest>`",
  "`POST /v2/<name>/blobs/uploads/` (monolithic, chunked and cross-repository mount)",
  "`GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<id>`",
  "`GET /v2/<name>/tags/list` (with `n` and `last`)",
  "`GET /v2/<name>/referrers/<digest>`",
];

/** Registers the `/v2` entries and the registry's security schemes on the registry sub-app. */
export function documentRegistry(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "registryToken", {
    type: "http",
    scheme: "bearer",
    description:
      "A registry bearer token from `/v2/token` (the Docker token flow a `401` challenge points at). Public repositories also accept anonymous tokens.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "registryBasic", {
    type: "http",
    scheme: "basic",
    description: "For `/v2/token`: any username with a Kiln API token as the password, or `kiln-job` with a job token.",
  });
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/v2/",
    operationId: "checkRegistry",
    tags: ["registry"],
    summary: "OCI registry: API version check",
    description: `The built-in container registry speaks the OCI Distribution API v1.1 (${SPEC}) under \`/v2/\`; \`docker\`, \`podman\`, \`buildah\`, \`skopeo\` and \`crane\` work with it. Repositories are \`<workspace>/<path>\`. Errors use the spec's \`{ "errors": [...] }\` body, not Kiln's. Endpoints: ${ENDPOINTS.join("; ")}. Only this check and the token endpoint are modelled as operations here.`,
    security: [{ registryToken: [] }],
    responses: {
      200: { description: "Authenticated: the registry speaks v2.", content: { "application/json": { schema: z.object({}) } } },
      401: ociError("No credentials: the `WWW-Authenticate` challenge names the token endpoint."),
      429: ociError("TOOMANYREQUESTS: a request budget is spent; see `Retry-After`."),
    },
  });
  const tokenResponses = {
    200: { description: "A bearer token for the granted scopes.", content: { "application/json": { schema: TokenSchema } } },
    401: ociError("The credentials are wrong."),
    429: ociError("TOOMANYREQUESTS: a request budget is spent; see `Retry-After`."),
  };
  const scope = z
    .array(z.string())
    .optional()
    .openapi({ description: "`repository:<name>:<actions>`, repeatable.", example: ["repository:acme/app:pull,push"] });
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/v2/token",
    operationId: "getRegistryToken",
    tags: ["registry"],
    summary: "OCI registry: get a bearer token (Docker token flow)",
    description: "Without credentials the token reaches public repositories only. Only the requested scopes the caller holds are granted.",
    security: [{ registryBasic: [] }, {}],
    request: { query: z.object({ service: z.string().optional(), scope }) },
    responses: tokenResponses,
  });
  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/v2/token",
    operationId: "createRegistryToken",
    tags: ["registry"],
    summary: "OCI registry: get a bearer token (OAuth2 password grant)",
    security: [{ registryBasic: [] }, {}],
    request: {
      body: {
        content: {
          "application/x-www-form-urlencoded": {
            schema: z.object({
              grant_type: z.string().optional(),
              username: z.string().optional(),
              password: z.string().optional(),
              scope: z.string().optional(),
              service: z.string().optional(),
            }),
          },
        },
      },
    },
    responses: tokenResponses,
  });
}
