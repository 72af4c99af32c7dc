/** Workspace secrets: write-only values, AES-GCM encrypted at rest. */
import { sql } from "drizzle-orm";
import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/**
 * One secret: a JSON object of string values, encrypted with AES-GCM under the key-encryption
 * key (Worker secret KILN_SECRET_KEY) with the secret's name as additional data, so a
 * ciphertext copied to another name does not decrypt.
 */
export const secrets = sqliteTable(
  "secrets",
  {
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    name: text("name").notNull(),
    /** Key names only (listing shows these, never values). */
    keys: text("keys", { mode: "json" }).$type<string[]>().notNull(),
    /** base64(iv || ciphertext || tag). */
    ciphertext: text("ciphertext").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.name] })],
);
