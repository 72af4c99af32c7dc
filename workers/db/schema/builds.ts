/**
 * Builds as D1 sees them: a projection the build's Durable Object (`durable-objects/build.ts`)
 * keeps up to date, so reads (`GET /v1/builds/:id`, image status, badges) never wake an
 * object. The object's SQLite storage stays the source of truth while a build runs.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/** Every status a build passes through (durable-objects/build-machine.ts owns the transitions). */
export const BUILD_STATUSES = [
  "waiting",
  "queued",
  "retrying",
  "dispatching",
  "running",
  "succeeded",
  "failed",
  "cancelled",
  "timeout",
] as const;
/** One build status. */
export type BuildStatusColumn = (typeof BUILD_STATUSES)[number];

/** One build: one job for the uncached suffix of a chain, dispatched to one runner at a time. */
export const builds = sqliteTable(
  "builds",
  {
    /** `bd-` + 26 base32 characters; also the dispatched job's `jobId`. */
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    /** The layer this build ends with. */
    topKey: text("top_key").notNull(),
    /** JSON array of the keys this build is responsible for, in chain order (a suffix of the chain). */
    layerKeys: text("layer_keys", { mode: "json" }).$type<string[]>().notNull(),
    /** `normal`, `force` (rebuild and replace the cache) or `ignore` (rebuild, cache untouched). */
    mode: text("mode", { enum: ["normal", "force", "ignore"] }).notNull(),
    status: text("status", { enum: BUILD_STATUSES }).notNull(),
    /** Why it failed: build | infra | timeout | cancelled | dependency; null unless it failed. */
    failureReason: text("failure_reason"),
    failureMessage: text("failure_message"),
    /** The exit code of the build step that failed, as the runner reported it; null unless a `build` failure carried one. */
    failureExitCode: integer("failure_exit_code"),
    /** The layer the runner's failure named, else for a failed step the first the build had not finished; null otherwise. */
    failureLayerKey: text("failure_layer_key"),
    /** JSON array: the last lines of output before the failure (at most 20, secrets masked by the runner); null when none. */
    failureLogTail: text("failure_log_tail", { mode: "json" }).$type<string[]>(),
    /** Dispatch attempts so far (at most 3: the first and two retries). */
    attempts: integer("attempts").notNull().default(0),
    /** The fleet of the current or last attempt. */
    fleetId: text("fleet_id"),
    cancelRequested: integer("cancel_requested", { mode: "boolean" }).notNull().default(false),
    /** R2 LOGS key prefix of the archived log once the build ended, else null (logs live in the object). */
    logArchive: text("log_archive"),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
    finishedAt: integer("finished_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("builds_workspace_created").on(t.workspaceId, t.createdAt)],
);

/** Layers a build produced (also for `ignoreCache` builds, whose results never enter `layers`). */
export const buildLayers = sqliteTable(
  "build_layers",
  {
    buildId: text("build_id").notNull(),
    key: text("key").notNull(),
    digest: text("digest").notNull(),
    /** Digest-pinned reference, `<host>/<workspace>/layers@sha256:...`. */
    reference: text("reference").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    builtAt: integer("built_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [primaryKey({ columns: [t.buildId, t.key] })],
);

/**
 * Dispatch attempts, so a runner event finds the fleet whose signing secret verifies it
 * (and a stale attempt's event can be told apart from a forged one).
 */
export const buildAttempts = sqliteTable(
  "build_attempts",
  {
    attemptId: text("attempt_id").primaryKey(),
    buildId: text("build_id").notNull(),
    fleetId: text("fleet_id").notNull(),
    attemptNo: integer("attempt_no").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [index("build_attempts_build").on(t.buildId)],
);
