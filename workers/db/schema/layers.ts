/**
 * D1 schema, the single source of truth: drizzle-kit generates `migrations/` from it and
 * only `wrangler d1 migrations apply` runs them.
 */
import { sql } from "drizzle-orm";
import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Built layers, first writer wins: one row per (workspace, layer key) once a build succeeds. */
export const layers = sqliteTable(
  "layers",
  {
    workspaceId: text("workspace_id").notNull(),
    key: text("key").notNull(),
    /** Manifest digest of the pushed layer image. */
    digest: text("digest").notNull(),
    /** Registry reference the layer was pushed to. */
    reference: text("reference").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    builtAt: integer("built_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.key] })],
);
