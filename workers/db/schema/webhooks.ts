/** Webhook subscriptions (decision 0017): where a workspace's completion notifications go. */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/**
 * One subscription: an https URL, the `build.*` events it wants, and its Standard Webhooks
 * signing secret, AES-GCM encrypted under KILN_SECRET_KEY with `kiln/webhook/<id>` as additional
 * data (workers/secrets/secret-box.ts). Deliveries and their log live in the subscription's
 * WebhookDelivery Durable Object, not here.
 */
export const webhookSubscriptions = sqliteTable(
  "webhook_subscriptions",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    url: text("url").notNull(),
    events: text("events", { mode: "json" }).$type<string[]>().notNull(),
    description: text("description"),
    /** base64(iv || ciphertext || tag) of the `whsec_...` secret. */
    secretCiphertext: text("secret_ciphertext").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  // By workspace: listing, and the lookup every finished image makes.
  (t) => [index("webhook_subscriptions_workspace").on(t.workspaceId, t.createdAt)],
);
