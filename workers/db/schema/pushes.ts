/**
 * Pushes to external registries (decision 0019): one row per target of an image submission
 * that asked for `push`, written `pending` at submission and settled by the runner's
 * `push_result` event through the pushing build's outbox. Keyed by image, not build, because
 * other submissions may join the pushing build and must not see its targets.
 */
import type { PushAttestationsStatus } from "@kiln-build/protocol";
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/** One push target of one image. */
export const imagePushes = sqliteTable(
  "image_pushes",
  {
    imageId: text("image_id").notNull(),
    /** Position in the submission's `push` list (targets are shown in that order). */
    position: integer("position").notNull(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    /** The build that pushes it (the submission's own). */
    buildId: text("build_id").notNull(),
    /** The target as submitted, e.g. `ghcr.io/org/app:v1`. */
    reference: text("reference").notNull(),
    /** The name of the Kiln secret with its login (never its value), or null. */
    secretName: text("secret_name"),
    status: text("status", { enum: ["pending", "succeeded", "failed"] })
      .notNull()
      .default("pending"),
    /** The digest read back from the target after the push. */
    digest: text("digest"),
    /** The registry's message when the push failed (secrets masked by the runner). */
    message: text("message"),
    /** How the target's attestations ended (`PushAttestationsStatus` JSON, decision 0024); null until the runner reports. */
    attestations: text("attestations", { mode: "json" }).$type<PushAttestationsStatus>(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [primaryKey({ columns: [t.imageId, t.position] }), index("image_pushes_build").on(t.buildId)],
);
