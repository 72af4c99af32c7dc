/** Named images: a tag points at an image id, optionally public (badges, status pages). */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/** `PUT /v1/tags/:name` writes one row; badges read it without touching Durable Objects. */
export const tags = sqliteTable(
  "tags",
  {
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    name: text("name").notNull(),
    imageId: text("image_id").notNull(),
    public: integer("public", { mode: "boolean" }).notNull().default(false),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  // By image: an image's tags (`GET /v1/images/:id`) and the tags a finished build publishes.
  (t) => [primaryKey({ columns: [t.workspaceId, t.name] }), index("tags_image").on(t.workspaceId, t.imageId)],
);
