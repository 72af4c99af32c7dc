/**
 * `POST /v1/runner/events`: what runners report (accepted, started, log chunks, heartbeats,
 * layer results, the outcome). Authenticated per fleet with the Standard Webhooks scheme: the
 * event names its job and attempt, the attempt names the fleet it was dispatched to, and that
 * fleet's signing secret must verify the body (±5 min tolerance). Only `jobId` and
 * `attemptId` are read before the signature is verified; an unknown attempt is answered
 * exactly as a bad signature (401 `bad_signature`), so the route is no oracle of attempts,
 * and the full schema is applied to verified bodies only. The build's object then fences the
 * attempt (stale -> 409, nothing changes) and drops replays by `webhook-id` atomically with
 * applying the event. The answer's `cancel` asks the runner to stop.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  newWebhookSecret,
  PushAttestationsResponseSchema,
  RunnerEventResponseSchema,
  RunnerEventSchema,
  verifyWebhook,
  type WebhookRejection,
} from "@kiln-build/protocol";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { acceptSbomReport } from "../attestations/attest.ts";
import { acceptBaseDigests } from "../attestations/base-digests.ts";
import { acceptPushAttestations } from "../attestations/push-attest.ts";
import { acceptPushAttestationsResult } from "../attestations/push-attest-result.ts";
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
  unknown_push_target: conflict("unknown_push_target", "This job does not push to that target."),
  log_gap_too_large: conflict(
    "log_gap_too_large",
    "Too many log chunks are missing before this one. Resend from the first unacknowledged sequence number.",
  ),
};

const eventRoute = createRoute({
  method: "post",
  path: "/v1/runner/events",
  operationId: "reportRunnerEvent",
  tags: ["runner"],
  summary: "Report a runner event (runners)",
  description:
    "Signed with the fleet's signing secret. 409 `stale_attempt`: stop the job. 409 `duplicate_event`: already processed, treat as delivered. An `sbom` report (docs/attestations.md) is answered 422 when the server has no attestation key. A `push_attestations` request (a pushed image's digest, after its `push_result`) is answered with the signed statements to attach (`PushAttestationsResponse`); 409 `unknown_push_digest` when the digest is not what this attempt reported for the target, 409 `push_mismatch` when the pushed manifest does not hold the built image's layers.",
  security: [{ fleetSignature: [] }],
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
      content: {
        "application/json": {
          schema: z
            .union([RunnerEventResponseSchema, PushAttestationsResponseSchema])
            .openapi("RunnerEventResponse", { description: "`{ok, cancel}`; for `push_attestations`, also the statements to attach." }),
        },
      },
    },
    ...errorResponses(400, 401, 404, 409, 413, 422),
  },
});
// Documented from the schema, but parsed by the handler: the body is parsed once, and validated only once its signature verified.
runnerEventsApp.openAPIRegistry.registerPath(eventRoute);

runnerEventsApp.post("/v1/runner/events", jsonBodyLimit(MAX_EVENT_BYTES), async (c) => {
  // The signature covers the exact bytes: verify the raw text, never a re-serialisation.
  const raw = await c.req.text();
  const { json, jobId, attemptId } = routingOf(raw);
  const fleet = await drizzle(c.env.DB)
    .select({ fleet: fleets })
    .from(buildAttempts)
    .innerJoin(fleets, eq(fleets.id, buildAttempts.fleetId))
    .where(and(eq(buildAttempts.attemptId, attemptId), eq(buildAttempts.buildId, jobId)))
    .get();
  // An unknown attempt is verified too, with a secret nobody holds: it answers exactly as a wrong
  // signature does (same status, body and work), so the route does not tell which attempts exist.
  const secret = fleet ? await fleetSigningSecret(c.env, fleet.fleet) : unknownAttemptSecret();
  const verified = verifyWebhook(secret, c.req.raw.headers, raw);
  if (!verified.ok) throw signatureRefused(verified.error);
  if (!fleet) throw signatureRefused("bad_signature");
  // The image's SBOM (decision 0024): checked with the build, then signed and attached by the Worker.
  if ((json as { type?: unknown }).type === "sbom") {
    await acceptSbomReport(c.env, json);
    return c.json({ ok: true as const, cancel: false }, 200);
  }
  // Digests of unpinned base images, recorded for the provenance (decision 0024).
  if ((json as { type?: unknown }).type === "base_digests") {
    await acceptBaseDigests(c.env, json);
    return c.json({ ok: true as const, cancel: false }, 200);
  }
  // A pushed image's attestations (decision 0024): the signed statements to attach, then what was attached.
  if ((json as { type?: unknown }).type === "push_attestations") return c.json(await acceptPushAttestations(c.env, json), 200);
  if ((json as { type?: unknown }).type === "push_attestations_result") {
    await acceptPushAttestationsResult(c.env, json);
    return c.json({ ok: true as const, cancel: false }, 200);
  }
  // Only a verified body is validated in full; the issues are bounded like every error body (errors.ts).
  const parsed = RunnerEventSchema.safeParse(json);
  if (!parsed.success) throw badRequest("The body is not a runner event.", parsed.error.issues);
  const event = parsed.data;
  if (verified.id.length > 256) throw badRequest("webhook-id is longer than 256 characters.");
  const result = await c.env.BUILD.getByName(event.jobId).runnerEvent(verified.id, event);
  if (!result.ok) throw REFUSALS[result.error.code] ?? conflict(result.error.code, "The event was refused.");
  return c.json({ ok: true as const, cancel: result.cancel }, 200);
});

const ROUTING_ID = z.string().min(1).max(128);
const ROUTING_HINT = "The body must be a JSON object whose `jobId` and `attemptId` (1-128 characters) name the dispatched attempt.";

/**
 * The parsed body and the two fields that find the fleet whose secret signs it. Nothing else
 * is read before the signature is verified, and a refusal here carries no details.
 */
function routingOf(raw: string): { json: unknown; jobId: string; attemptId: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw badRequest(`The body is not JSON. ${ROUTING_HINT}`);
  }
  const fields = (typeof json === "object" && json !== null && !Array.isArray(json) ? json : {}) as Record<string, unknown>;
  const jobId = ROUTING_ID.safeParse(fields.jobId);
  const attemptId = ROUTING_ID.safeParse(fields.attemptId);
  if (!jobId.success || !attemptId.success) throw badRequest(ROUTING_HINT);
  return { json, jobId: jobId.data, attemptId: attemptId.data };
}

const SIGNATURE_REFUSALS: Record<WebhookRejection, string> = {
  missing_headers: "The webhook-id, webhook-timestamp and webhook-signature headers are required.",
  bad_signature: "The signature does not verify with the signing secret of the fleet this attempt was dispatched to.",
  stale_timestamp: "webhook-timestamp is more than 5 minutes from the server's clock.",
};

function signatureRefused(why: WebhookRejection): ApiError {
  return new ApiError(401, why, SIGNATURE_REFUSALS[why]);
}

// Made on first use: Workers refuse random values at module scope.
let throwaway: string | undefined;
function unknownAttemptSecret(): string {
  throwaway ??= newWebhookSecret();
  return throwaway;
}
