/**
 * Builds: `GET /v1/builds/:id` (from D1, never waking the object), `POST /v1/builds/:id/cancel`
 * (delivered to the runner in its next event response) and `GET /v1/builds/:id/logs`, the
 * live, resumable log: a long-poll on a cursor (docs/decisions/0007-build-logs-transport.md).
 * While the build runs the chunks come from its object; once it ended, from the R2 archive.
 */

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { BuildTimelineSchema, LogPageSchema as ProtocolLogPageSchema } from "@kiln-build/protocol";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { readArchive } from "../../durable-objects/log-archive.ts";
import { loadBuildTimeline } from "../../durable-objects/timeline-read.ts";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { buildLayers, builds } from "../db/schema/builds.ts";
import { ApiError, notFound } from "../errors.ts";
import { bearerSecurity, errorResponses, iso, registerBearerScheme } from "./common.ts";

/** The builds sub-app, mounted at the root. */
export const buildsApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(buildsApp);

const MAX_WAIT_SECONDS = 25;
const LOG_PAGE_BYTES = 1024 * 1024;

const IdParam = z.object({
  id: z
    .string()
    .max(64)
    .openapi({ param: { name: "id", in: "path" }, example: "bd-abc" }),
});
const BuildSchema = z
  .object({
    id: z.string(),
    status: z.enum(["waiting", "queued", "retrying", "dispatching", "running", "succeeded", "failed", "cancelled", "timeout"]),
    mode: z.enum(["normal", "force", "ignore"]),
    failure: z
      .object({
        reason: z.string(),
        message: z.string(),
        exitCode: z
          .number()
          .int()
          .nullable()
          .openapi({ description: "The failing build step's exit code; null for other failures or when the runner reported none." }),
        layerKey: z.string().nullable().openapi({
          description:
            "The layer the runner's failure named, else for a failed step the first layer the build had not finished; null otherwise.",
        }),
        logTail: z.array(z.string()).openapi({
          description: "The last lines of output the runner sent with the failure (at most 20, oldest first, secrets masked).",
        }),
      })
      .nullable(),
    attempts: z.number().int(),
    fleetId: z.string().nullable(),
    cancelRequested: z.boolean(),
    layerKeys: z.array(z.string()),
    layers: z.array(z.object({ key: z.string(), digest: z.string(), reference: z.string(), sizeBytes: z.number().int() })),
    createdAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .openapi("Build");
const LogPageSchema = ProtocolLogPageSchema.openapi("LogPage");
const TimelineSchema = BuildTimelineSchema.openapi("BuildTimeline");
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

buildsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/builds/{id}",
    operationId: "getBuild",
    tags: ["builds"],
    summary: "Read a build",
    description:
      "With `waitSeconds`, a build that has not ended is answered when it ends or when that many seconds have passed, whichever is first (a long-poll for clients that wait for the outcome without following the log).",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:read")] as const,
    request: {
      params: IdParam,
      query: z.object({ waitSeconds: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS).default(0).openapi({ type: "integer" }) }),
    },
    responses: { 200: json(BuildSchema, "The build."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { waitSeconds } = c.req.valid("query");
    const workspaceId = await workspaceOf(c);
    let row = await buildRow(c.env, workspaceId, id);
    if (waitSeconds > 0 && !isFinal(row.status)) {
      await c.env.BUILD.getByName(id).waitForEnd(waitSeconds * 1000);
      // Whether it ended or the time is up, answer with the record as it is now.
      row = await buildRow(c.env, workspaceId, id);
    }
    return c.json(await present(c.env, row), 200);
  },
);

buildsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/builds/{id}/cancel",
    operationId: "cancelBuild",
    tags: ["builds"],
    summary: "Cancel a build",
    description:
      "A build no runner has yet is cancelled at once (200). A running one is told in the runner's next heartbeat response and ends as `cancelled` when the runner confirms, or after a 2-minute grace period (202). Cancelling an ended build changes nothing (200). Every image sharing the build is cancelled with it.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:write")] as const,
    request: { params: IdParam },
    responses: {
      200: json(BuildSchema, "The build is final."),
      202: json(BuildSchema, "Cancellation requested; the runner stops at its next heartbeat."),
      ...errorResponses(400, 401, 403, 404),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const workspaceId = await workspaceOf(c);
    await buildRow(c.env, workspaceId, id);
    const result = await c.env.BUILD.getByName(id).cancel();
    if (!result.ok) throw notFound(`Build '${id}'`);
    const view = await present(c.env, await buildRow(c.env, workspaceId, id));
    return c.json(view, isFinal(view.status) ? 200 : 202);
  },
);

buildsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/builds/{id}/logs",
    operationId: "getBuildLogs",
    tags: ["builds"],
    summary: "Read the build log from a cursor (long-poll)",
    description:
      "Returns the chunks after `cursor` (0 = from the start), in order, each with its position. With `waitSeconds`, waits up to that long for new chunks while the build runs. Resume after a disconnect by passing the last `cursor`: nothing is lost or repeated. `done` is true once the build ended and everything was returned.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:read")] as const,
    request: {
      params: IdParam,
      query: z.object({
        cursor: z.coerce.number().int().min(0).default(0).openapi({ type: "integer" }),
        waitSeconds: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS).default(0).openapi({ type: "integer" }),
        limit: z.coerce.number().int().min(1).max(1000).default(500).openapi({ type: "integer" }),
      }),
    },
    responses: { 200: json(LogPageSchema, "Chunks after the cursor."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { cursor, waitSeconds, limit } = c.req.valid("query");
    const row = await buildRow(c.env, await workspaceOf(c), id);
    let archive = row.logArchive;
    if (archive === null) {
      const page = await c.env.BUILD.getByName(id).readLogs(cursor, {
        maxChunks: limit,
        maxBytes: LOG_PAGE_BYTES,
        waitMs: waitSeconds * 1000,
      });
      if (!page.ok) throw notFound(`Build '${id}'`);
      if (page.archived === null) {
        return c.json(
          { buildId: id, status: page.status, chunks: page.chunks, cursor: page.chunks.at(-1)?.pos ?? cursor, done: page.done },
          200,
        );
      }
      archive = page.archived;
    }
    const stored = await readArchive(c.env.LOGS, archive, cursor, limit);
    if (!stored) throw new ApiError(503, "log_archive_missing", "The build's log archive is missing from storage.");
    const next = stored.chunks.at(-1)?.pos ?? cursor;
    return c.json({ buildId: id, status: row.status, chunks: stored.chunks, cursor: next, done: next >= stored.lastPos }, 200);
  },
);

buildsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/builds/{id}/timeline",
    operationId: "getBuildTimeline",
    tags: ["builds"],
    summary: "Read a build's timeline",
    description:
      "Where the time went: the build's own segments back to back from creation to the end (waiting for layers, queued for a fleet slot, dispatching attempt N to a fleet, the runner's queue, running, retrying with the reason), adding up to `wallMs`; and per layer its phases (context download, base pull, each Dockerfile step with its line, commit, push) with start, duration, outcome and exit code, the critical path marked, cached layers with the build that produced them. Times are epoch milliseconds on the orchestrator's clock (runner times are shifted by the attempt's estimated clock offset). Available while the build runs and after it ended; builds that ended before timelines were recorded answer 404 `timeline_unavailable`.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:read")] as const,
    request: { params: IdParam },
    responses: { 200: json(TimelineSchema, "The timeline."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const answer = await loadBuildTimeline(c.env, await workspaceOf(c), id);
    if (answer.ok) return c.json(answer.timeline, 200);
    if (answer.error === "not_found") throw notFound(`Build '${id}'`);
    throw new ApiError(404, "timeline_unavailable", `Build '${id}' ended before Kiln recorded build timelines.`);
  },
);

async function buildRow(env: Env, workspaceId: string, id: string) {
  const row = await drizzle(env.DB)
    .select()
    .from(builds)
    .where(and(eq(builds.id, id), eq(builds.workspaceId, workspaceId)))
    .get();
  if (!row) throw notFound(`Build '${id}'`);
  return row;
}

async function present(env: Env, row: typeof builds.$inferSelect): Promise<z.infer<typeof BuildSchema>> {
  const built = await drizzle(env.DB).select().from(buildLayers).where(eq(buildLayers.buildId, row.id));
  const order = new Map(row.layerKeys.map((k, i) => [k, i]));
  built.sort((a, b) => (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0));
  return {
    id: row.id,
    status: row.status,
    mode: row.mode,
    failure: row.failureReason
      ? {
          reason: row.failureReason,
          message: row.failureMessage ?? "",
          exitCode: row.failureExitCode,
          layerKey: row.failureLayerKey,
          logTail: row.failureLogTail ?? [],
        }
      : null,
    attempts: row.attempts,
    fleetId: row.fleetId,
    cancelRequested: row.cancelRequested,
    layerKeys: row.layerKeys,
    layers: built.map(({ key, digest, reference, sizeBytes }) => ({ key, digest, reference, sizeBytes })),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    finishedAt: iso(row.finishedAt),
  };
}

function isFinal(status: string): boolean {
  return status === "succeeded" || status === "failed" || status === "cancelled" || status === "timeout";
}
