/**
 * D1 schema, the single source of truth: drizzle-kit generates `migrations/` from it and
 * only `wrangler d1 migrations apply` runs them.
 */
import { sql } from "drizzle-orm";
import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Built layers: one row per (workspace, layer key) once a build succeeds. Normal builds write
 * first-writer-wins (`ON CONFLICT DO NOTHING`); only a `forceBuild` replaces a row, and
 * `ignoreCache` builds never write here. Failures are never stored.
 */
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
    /** The build that produced the row (null for rows written before builds were recorded). */
    buildId: text("build_id"),
    builtAt: integer("built_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.key] })],
);
