/**
 * The Build object's SQLite schema: one versioned migration list, run in order by `migrate`
 * (storage.ts) in the object's constructor. Tables owned by a part of the object (logs, pushes,
 * timeline, timers) are defined next to that part and appended here.
 */
import { BASE_DIGESTS_TABLE } from "./base-digests.ts";
import { LOG_PENDING_ENTRIES, LOG_TABLES } from "./build-logs.ts";
import { PUSH_TABLES } from "./build-push.ts";
import { TIMELINE_TABLES } from "./build-timeline-store.ts";
import { TIMERS_TABLE } from "./storage.ts";

/** The Build object's migrations, in order; append only. */
export const BUILD_MIGRATIONS = [
  `CREATE TABLE build (
     one INTEGER PRIMARY KEY CHECK (one = 1), id TEXT NOT NULL, workspace_id TEXT NOT NULL, workspace_name TEXT NOT NULL, origin TEXT NOT NULL,
     mode TEXT NOT NULL, fresh_from INTEGER NOT NULL, builder_version TEXT NOT NULL, parent_key TEXT, parent_reference TEXT, timeout_ms INTEGER NOT NULL,
     top_key TEXT NOT NULL, status TEXT NOT NULL, attempt_no INTEGER NOT NULL, cancel_requested INTEGER NOT NULL, failure_reason TEXT, failure_message TEXT,
     waiting_key TEXT, slot_fleet TEXT, failed_layer TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, finished_ms INTEGER, log_archive TEXT);
   CREATE TABLE layers (idx INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, state TEXT NOT NULL, digest TEXT, reference TEXT, size_bytes INTEGER, released INTEGER NOT NULL DEFAULT 0);
   CREATE TABLE layer_spec_parts (idx INTEGER NOT NULL, part INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (idx, part));
   CREATE TABLE attempts (attempt_no INTEGER PRIMARY KEY, attempt_id TEXT NOT NULL UNIQUE, fleet_id TEXT NOT NULL, deadline_ms INTEGER NOT NULL,
     dispatched_ms INTEGER, ended_ms INTEGER, token_hashes TEXT NOT NULL DEFAULT '[]');
   CREATE TABLE queued_at (fleet_id TEXT PRIMARY KEY);
   CREATE TABLE seen_events (webhook_id TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL);
   CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0);
   ${TIMERS_TABLE}
   ${LOG_TABLES}`,
  // The submitting request's id, sent with every dispatch so one id traces a build end to end.
  "ALTER TABLE build ADD COLUMN request_id TEXT",
  // What a runner's `failed` event said beyond reason and message, kept next to failed_layer (FailureDetails).
  `ALTER TABLE build ADD COLUMN failure_exit_code INTEGER;
   ALTER TABLE build ADD COLUMN failure_log_tail TEXT;`,
  // Batched `logs` events held behind a gap keep all their entries.
  LOG_PENDING_ENTRIES,
  // Cached layers found missing from the registry, by the attempt that found them (each is rebuilt once).
  "CREATE TABLE missing_layers (key TEXT PRIMARY KEY, attempt_no INTEGER NOT NULL, found_ms INTEGER NOT NULL)",
  // Pushes to external registries and their per-target results (build-push.ts).
  PUSH_TABLES,
  // The build's timeline: status marks, runner phase spans and each attempt's runner clock offset.
  TIMELINE_TABLES,
  // Digests the job's runner resolved for unpinned base images (base-digests.ts, decision 0024).
  BASE_DIGESTS_TABLE,
];
