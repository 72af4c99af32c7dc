/**
 * The Kiln Worker: the orchestrator's HTTP entry point. One Hono sub-app per resource under
 * `workers/routes/`, one error mapping (`errors.ts`), zod schemas as the single source of
 * validation and of the OpenAPI document at `/openapi.json`.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { runGc } from "../durable-objects/layer-cache-gc.ts";
import type { AppEnv } from "./app-env.ts";
import { bodyCap } from "./body-limit.ts";
import { ApiError, badRequest, boundedMessage, errorResponse } from "./errors.ts";
import { requestContext } from "./log.ts";
import { isRegistryPath, rateLimit } from "./rate-limit.ts";
import { adminApp } from "./routes/admin.ts";
import { attestationKeysApp } from "./routes/attestation-keys.ts";
import { badgesApp } from "./routes/badges.ts";
import { buildsApp } from "./routes/builds.ts";
import { contextManifestsApp } from "./routes/context-manifests.ts";
import { contextsApp } from "./routes/contexts.ts";
import { docsApp } from "./routes/docs.ts";
import { fleetsApp } from "./routes/fleets.ts";
import { imageIndexesApp } from "./routes/image-indexes.ts";
import { imagesApp } from "./routes/images.ts";
import { imagesDeleteApp } from "./routes/images-delete.ts";
import { imagesListApp } from "./routes/images-list.ts";
import { metaApp, openApiConfig } from "./routes/meta.ts";
import { pageLinksApp } from "./routes/page-links.ts";
import { registryApp } from "./routes/registry/index.ts";
import { runnerContextsApp } from "./routes/runner-contexts.ts";
import { runnerEventsApp } from "./routes/runner-events.ts";
import { secretsApp } from "./routes/secrets.ts";
import { statusPageApp } from "./routes/status-page.ts";
import { tagsApp } from "./routes/tags.ts";
import { tokensApp } from "./routes/tokens.ts";
import { webhooksApp } from "./routes/webhooks.ts";
import { workspacePagesApp } from "./routes/workspace-pages.ts";
import { workspacesApp } from "./routes/workspaces.ts";

const app = new OpenAPIHono<AppEnv>({
  // Validation failures become our one error shape instead of zod-openapi's default.
  defaultHook: (result) => {
    if (!result.success) throw badRequest("Request validation failed.", result.error.issues);
  },
});

// Request id and access log first, then budgets and the body cap (log.ts, rate-limit.ts, body-limit.ts);
// `/v2` is charged inside the registry app, so its 429 speaks the registry's error format.
app.use(requestContext);
app.use(rateLimit({ skip: isRegistryPath }));
app.use(bodyCap);

app.route("/", metaApp);
app.route("/", workspacesApp);
app.route("/", tokensApp);
app.route("/", fleetsApp);
app.route("/", secretsApp);
app.route("/", contextManifestsApp);
app.route("/", contextsApp);
app.route("/", runnerContextsApp);
app.route("/", tagsApp);
app.route("/", badgesApp);
app.route("/", attestationKeysApp);
app.route("/", docsApp);
// The OCI registry: `/v2` has its own auth (Docker token flow) and error format.
app.route("/", registryApp);
app.route("/", imagesApp);
app.route("/", imagesListApp);
app.route("/", imagesDeleteApp);
app.route("/", imageIndexesApp);
app.route("/", statusPageApp);
// Browser sessions and the workspace view (decision 0021).
app.route("/", pageLinksApp);
app.route("/", workspacePagesApp);
app.route("/", buildsApp);
app.route("/", runnerEventsApp);
app.route("/", adminApp);
app.route("/", webhooksApp);

// Every mounted route must be in the document (test/workers/openapi-coverage.test.ts).
app.doc31("/openapi.json", openApiConfig);
app.notFound((c) => errorResponse(new ApiError(404, "not_found", boundedMessage(`No route for ${c.req.method} ${c.req.path}.`)), c));
app.onError(errorResponse);

/** Cron trigger: layer cache eviction, then the registry's mark-and-sweep GC (wrangler.toml `[triggers]`). */
// Awaited, not handed to waitUntil: the run is the whole event (`wrangler dev`'s `/cdn-cgi/local/scheduled` answers when it ends).
async function scheduled(_controller: ScheduledController, env: Env, _ctx: ExecutionContext): Promise<void> {
  await runGc(env, { dryRun: false });
}

export { app };
export default { fetch: app.fetch, scheduled } satisfies ExportedHandler<Env>;

// Durable Object classes must be exports of the main module (wrangler.toml binds them by name).
export { Build } from "../durable-objects/build.ts";
export { FleetScheduler } from "../durable-objects/fleet-scheduler.ts";
export { LayerBuild } from "../durable-objects/layer-build.ts";
export { RegistryUpload } from "../durable-objects/registry-upload.ts";
export { WebhookDelivery } from "../durable-objects/webhook-delivery.ts";
