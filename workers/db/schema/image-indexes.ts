/** Multi-platform images: one row groups one image per platform (decision 0023). */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/** One platform's image of an index, as grouped by `POST /v1/image-indexes`. */
export type StoredIndexEntry = { platform: string; imageId: string };

/**
 * What an index submitted with `push` copies to external registries once it is assembled: the
 * id of the build that will push it (chosen at submission, created after assembly) and the
 * targets, labels and annotations (Kiln's `org.opencontainers.image.*` included).
 */
export type StoredIndexPush = {
  buildId: string;
  targets: { reference: string; secret: string | null }[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
};

/**
 * An image index: its per-platform images, and once all of them succeeded the digest of the
 * OCI image index written to `<ws>/layers` (a manifest the registry GC keeps while this row
 * names it). Status is derived from the images, never stored.
 */
export const imageIndexes = sqliteTable(
  "image_indexes",
  {
    /** `ix-` + random. */
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    /** JSON array of `{platform, imageId}` in the order of `PLATFORMS`. */
    entries: text("entries", { mode: "json" }).$type<StoredIndexEntry[]>().notNull(),
    /** The assembled index's manifest digest; null until every platform succeeded and it was written. */
    digest: text("digest"),
    /** The external push to start once assembled (decision 0023, "Tags and pushes"); null without push. */
    push: text("push", { mode: "json" }).$type<StoredIndexPush>(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [index("image_indexes_workspace").on(t.workspaceId), index("image_indexes_digest").on(t.digest)],
);
