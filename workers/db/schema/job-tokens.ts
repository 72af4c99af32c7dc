/** Short-lived registry credentials minted for one dispatched job. */
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/**
 * A runner receives one per job (username `kiln-job`, password the token) to pull and push
 * that workspace's repositories in the built-in registry; only sha256(token) is stored.
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
});
