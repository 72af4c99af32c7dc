/**
 * Build-context uploads. The tarballs live in R2 at `contexts/sha256/<hex>` (content-addressed,
 * shared storage); these rows record which workspace proved it holds which digest, so a
 * workspace can neither skip an upload nor let its runners read a context it never sent.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/** One row per (workspace, digest) once the workspace's upload of that digest was verified and stored. */
export const contextUploads = sqliteTable(
  "context_uploads",
  {
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    /** `sha256:<64 hex>`, as in layer specs. */
    digest: text("digest").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
    /**
     * When the R2 object was last seen (stored or headed). Presence checks trust a row checked
     * within `CONTEXT_RECHECK_MS` and head R2 for older ones (decision 0022).
     */
    // A constant default: SQLite cannot add a column with an expression default; rows from before it count as never checked.
    checkedAt: integer("checked_at", { mode: "timestamp_ms" }).notNull().default(sql`0`),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.digest] })],
);

/**
 * An open multipart upload: parts go to an R2 multipart upload at `stagingKey`; completing it
 * verifies the sha256 while copying to the content-addressed key (docs/decisions/0008).
 */
export const contextMultipartUploads = sqliteTable(
  "context_multipart_uploads",
  {
    /** Our id (`upl_...`), used in URLs; R2's own upload id stays server-side. */
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    digest: text("digest").notNull(),
    /** Declared total size; every part but the last is exactly `partSizeBytes` (R2 requires equal parts). */
    sizeBytes: integer("size_bytes").notNull(),
    partSizeBytes: integer("part_size_bytes").notNull(),
    r2UploadId: text("r2_upload_id").notNull(),
    stagingKey: text("staging_key").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [index("context_multipart_uploads_workspace").on(t.workspaceId)],
);
