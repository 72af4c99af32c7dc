/**
 * `POST /v1/runner/events`: what runners report (accepted, started, log chunks, heartbeats,
 * layer results, the outcome). Authenticated per fleet with the Standard Webhooks scheme: the
 * event names its job and attempt, the attempt names the fleet it was dispatched to, and that
 * fleet's signing secret must verify the body (±5 min tolerance). The build's object then
 * fences the attempt (stale -> 409, nothing changes) and drops replays by `webhook-id`
 * atomically with applying the event. The answer's `cancel` asks the runner to stop.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { RunnerEventResponseSchema, RunnerEventSchema, verifyWebhook } from "@kiln-build/protocol";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { buildAttempts } from "../db/schema/builds.ts";
import { fleets } from "../db/schema/fleets.ts";
import { ApiError, badRequest, conflict, notFound } from "../errors.ts";
import { fleetSigningSecret } from "../fleets.ts";
import { errorResponses, jsonBodyLimit } from "./common.ts";

/** The runner-events sub-app, mounted at the root. */
export const runnerEventsApp = new OpenAPIHono<AppEnv>();
runnerEventsApp.openAPIRegistry.registerComponent("securitySchemes", "fleetSignature", {
  type: "apiKey",
  in: "header",
  name: "webhook-signature",
  description:
    "Standard Webhooks signature (`v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>`) with the fleet's signing secret.",
});

// A log chunk holds at most 1 MiB of text; JSON escaping can grow it up to six times.
const MAX_EVENT_BYTES = 8 * 1024 * 1024;

const REFUSALS: Record<string, ApiError> = {
  unknown_build: notFound("Build"),
  stale_attempt: conflict("stale_attempt", "This attempt is no longer current (retried, cancelled or finished). Stop the job."),
  duplicate_event: conflict("duplicate_event", "This webhook-id was already processed; nothing changed. Treat it as delivered."),
  unknown_layer: conflict("unknown_layer", "This job does not build that layer (or it is not being built now)."),
  log_gap_too_large: conflict(
    "log_gap_too_large",
    "Too many log chunks are missing before this one. Resend from the first unacknowledged sequence number.",
  ),
};

runnerEventsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/runner/events",
    operationId: "reportRunnerEvent",
    tags: ["runner"],
    summary: "Report a runner event (runners)",
    description:
      "Signed with the fleet's signing secret. 409 `stale_attempt`: stop the job. 409 `duplicate_event`: already processed, treat as delivered.",
    security: [{ fleetSignature: [] }],
    middleware: [jsonBodyLimit(MAX_EVENT_BYTES)] as const,
    request: {
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z.object({}).passthrough().openapi({ description: "A RunnerEvent (workers/protocol/runner-protocol.ts)." }),
          },
        },
      },
    },
    responses: {
      200: {
        description: "Accepted.",
        content: { "application/json": { schema: RunnerEventResponseSchema.openapi("RunnerEventResponse") } },
      },
      ...errorResponses(400, 401, 404, 409, 413),
    },
  }),
  async (c) => {
    // The signature covers the exact bytes: verify the raw text, never a re-serialisation.
    const raw = await c.req.text();
    let parsedJson: unknown;
    try {
      parsedJson = JSON.parse(raw);
    } catch {
      throw badRequest("The body is not JSON.");
    }
    const parsed = RunnerEventSchema.safeParse(parsedJson);
    if (!parsed.success) throw badRequest("The body is not a runner event.", parsed.error.issues);
    const event = parsed.data;
    const fleet = await drizzle(c.env.DB)
      .select({ fleet: fleets })
      .from(buildAttempts)
      .innerJoin(fleets, eq(fleets.id, buildAttempts.fleetId))
      .where(and(eq(buildAttempts.attemptId, event.attemptId), eq(buildAttempts.buildId, event.jobId)))
      .get();
    if (!fleet) throw new ApiError(404, "unknown_attempt", `No attempt '${event.attemptId}' of job '${event.jobId}' was dispatched.`);
    const verified = verifyWebhook(await fleetSigningSecret(c.env, fleet.fleet), c.req.raw.headers, raw);
    if (!verified.ok) {
      const why = {
        missing_headers: "The webhook-id, webhook-timestamp and webhook-signature headers are required.",
        bad_signature: "The signature does not verify with the fleet's signing secret.",
        stale_timestamp: "webhook-timestamp is more than 5 minutes from the server's clock.",
      }[verified.error];
      throw new ApiError(401, verified.error, why);
    }
    if (verified.id.length > 256) throw badRequest("webhook-id is longer than 256 characters.");
    const result = await c.env.BUILD.getByName(event.jobId).runnerEvent(verified.id, event);
    if (!result.ok) throw REFUSALS[result.error.code] ?? conflict(result.error.code, "The event was refused.");
    return c.json({ ok: true as const, cancel: result.cancel }, 200);
  },
);
