/** Short-lived registry credentials minted for one dispatched job. */
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/**
 * What a job token reaches in the built-in registry (docs/registry.md), least privilege: the
 * job's own layer repository and its layers' tags, and the images its layers pull.
 */
export type JobTokenScope = {
  /** Repository -> the tags the job may write there (its layers' target tags); digests are always allowed. */
  push: Record<string, string[]>;
  /** Repositories the job may pull besides those in `push`: its chain's parent and base images. */
  pull: string[];
};

/**
 * A runner receives one per job (username `kiln-job`, password the token) to pull what its
 * chain needs and push its layers in the built-in registry (`scope`); only sha256(token) is stored.
 */
export const jobTokens = sqliteTable("job_tokens", {
  hash: text("hash").primaryKey(),
  workspaceId: text("workspace_id")
    .notNull()
    .references(() => workspaces.id),
  jobId: text("job_id").notNull(),
  /** JSON array: ["pull"] or ["pull","push"]. */
  actions: text("actions", { mode: "json" }).$type<string[]>().notNull(),
  expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
  /** Null: no registry access beyond public pulls (rows from before scopes were stored). */
  scope: text("scope", { mode: "json" }).$type<JobTokenScope>(),
});
