/**
 * The `meta` part of the API: liveness (`GET /healthz`) and the OpenAPI document's own entry
 * and top-level fields (`openApiConfig`: info, servers, tags). The document itself is generated
 * by the root app (`app.doc31` in workers/index.ts), which alone holds every route.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { KILN_VERSION } from "@kiln-build/protocol";
import type { AppEnv } from "../app-env.ts";
import { errorResponses } from "./common.ts";

/** The meta sub-app, mounted at the root. */
export const metaApp = new OpenAPIHono<AppEnv>();

/** Liveness: answers without touching storage, the baseline the benchmarks compare against. */
metaApp.openapi(
  createRoute({
    method: "get",
    path: "/healthz",
    operationId: "getHealth",
    tags: ["meta"],
    summary: "Liveness",
    description: "Answers without touching storage. `GET /v1/admin/status` checks the deployment itself.",
    security: [],
    responses: { 200: { description: "Alive.", content: { "application/json": { schema: z.object({ ok: z.literal(true) }) } } } },
  }),
  (c) => c.json({ ok: true as const }, 200),
);

// Served by the root app's `doc31`; documented here so the document lists itself.
metaApp.openAPIRegistry.registerPath({
  method: "get",
  path: "/openapi.json",
  operationId: "getOpenApiDocument",
  tags: ["meta"],
  summary: "This OpenAPI 3.1 document",
  security: [],
  responses: {
    200: { description: "The document.", content: { "application/json": { schema: z.object({}).passthrough() } } },
    ...errorResponses(),
  },
});

/** Resource tags of the document, in the order the reference shows them. */
const TAGS: [name: string, description: string][] = [
  ["images", "Submit an image (its whole layer chain) and read images."],
  ["builds", "Builds: status, cancellation, the log and the timeline."],
  ["webhooks", "Completion notifications: signed webhook subscriptions and their delivery logs."],
  ["contexts", "Build-context uploads: content-addressed tarballs, single or multipart."],
  ["tags", "Names pointing at images; a public tag has a badge and a status page."],
  ["secrets", "Encrypted build secrets; values are write-only."],
  ["tokens", "API and admin tokens, and who the calling token is."],
  ["fleets", "Runner fleets that builds are dispatched to."],
  ["workspaces", "Tenants (admin tokens only)."],
  ["registry", "The built-in OCI registry under `/v2/` and repository visibility."],
  ["badges", "Public build-status badges of public tags."],
  ["attestations", "The public keys that verify images' signed SBOM and provenance (referrers in the registry)."],
  ["status-pages", "Public status pages of images public tags point at; the workspace view and private pages opened with a page link."],
  ["runner", "What runners call: context downloads (job token) and events (Standard Webhooks signature)."],
  ["admin", "Deployment status for operators."],
  ["meta", "Liveness, this document and its rendered reference."],
];

/** The document's top-level fields (everything but paths and components). */
export const openApiConfig = {
  openapi: "3.1.0",
  info: {
    title: "Kiln API",
    version: KILN_VERSION,
    description:
      'Kiln builds container images from layer chains on runner fleets. Authenticate with `Authorization: Bearer kiln_...`; every failure answers `{ "error": { "code", "message", "details?" } }` (schema `Error`), except the OCI registry under `/v2/`, which speaks the OCI error format. Reference: `/docs`.',
    license: { name: "Apache-2.0", identifier: "Apache-2.0" },
  },
  servers: [
    {
      url: "/",
      description:
        "The Worker's own origin: the API is served by the Worker that serves this document, at whatever origin it was reached (a custom domain or workers.dev).",
    },
  ],
  tags: TAGS.map(([name, description]) => ({ name, description })),
};
