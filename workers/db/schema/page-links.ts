/**
 * One-time use of browser page links (decision 0021). A link is HMAC-signed and expires on its
 * own, so nothing is stored when one is minted; exchanging it for a session cookie inserts its
 * id here, and a second exchange of the same id finds the row and is refused. Rows are useless
 * once the link has expired and are pruned then.
 */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/** Page links that have been exchanged for a session, until they expire. */
export const pageLinkUses = sqliteTable(
  "page_link_uses",
  {
    /** The link's random id (`jti`), 22 base64url characters. */
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    /** When the link stops being valid anyway; the row may be deleted after it. */
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    usedAt: integer("used_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [index("page_link_uses_expires").on(t.expiresAt)],
);
