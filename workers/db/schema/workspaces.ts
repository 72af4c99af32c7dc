/** Workspaces and their API tokens (stored only as sha256 hashes). */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

const createdAt = () => integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`);

/** A tenant: every image, secret, tag, fleet and token belongs to exactly one. */
export const workspaces = sqliteTable("workspaces", {
  id: text("id").primaryKey(),
  /** URL-safe unique name; also the registry namespace (`<registry>/<name>/...`). */
  name: text("name").notNull().unique(),
  createdAt: createdAt(),
});

/** API tokens. `hash` is sha256(token) in hex; the token itself is shown once and never stored. */
export const tokens = sqliteTable(
  "tokens",
  {
    id: text("id").primaryKey(),
    /** Null for admin tokens, which act across workspaces. */
    workspaceId: text("workspace_id").references(() => workspaces.id),
    kind: text("kind", { enum: ["admin", "api"] }).notNull(),
    hash: text("hash").notNull().unique(),
    name: text("name").notNull(),
    /** JSON array of scopes, e.g. ["images:write","secrets:write"]. */
    scopes: text("scopes", { mode: "json" }).$type<string[]>().notNull(),
    createdAt: createdAt(),
    revokedAt: integer("revoked_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("tokens_workspace").on(t.workspaceId)],
);
