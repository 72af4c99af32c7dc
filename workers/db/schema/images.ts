/**
 * Submitted images and the Idempotency-Key records of `POST /v1/images`. An image is one
 * submission of a layer chain: its keys, and the build that produces its top layer (null
 * when the whole chain was cached, so status and digests come from `layers` alone).
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/** A runtime mount as submitted: files attached at container start, not built into a layer. */
export type StoredRuntimeMount = { kind: "file" | "dir"; remotePath: string; context: { digest: string; sizeBytes: number } | null };

/**
 * One row per submission that needed a build, or one content-addressed row per fully cached
 * chain (and runtime mounts) of a workspace. Status is derived, never stored: `build_id` null
 * means every layer was cached; otherwise the build's row (and its `build_layers`) says where
 * the top layer is.
 */
export const images = sqliteTable(
  "images",
  {
    /** `im-` + 26 base32 characters: random, or derived from (workspace, top key, mounts) for a cached chain. */
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    /** JSON array of the chain's layer keys, base first (recomputed by the Worker, never the client's). */
    layerKeys: text("layer_keys", { mode: "json" }).$type<string[]>().notNull(),
    /** The last key of `layer_keys`: the layer this image is. */
    topKey: text("top_key").notNull(),
    /** The build that produces the top layer, or null when the chain was fully cached. */
    buildId: text("build_id"),
    /** `normal`, `force` (some layers rebuilt, cache replaced) or `ignore` (`ignoreCache`: rebuilt, cache untouched). */
    mode: text("mode", { enum: ["normal", "force", "ignore"] })
      .notNull()
      .default("normal"),
    /** Chain index from which this submission rebuilds regardless of the cache (= chain length when nothing is forced). */
    freshFrom: integer("fresh_from").notNull(),
    runtimeMounts: text("runtime_mounts", { mode: "json" }).$type<StoredRuntimeMount[]>().notNull().default(sql`'[]'`),
    /**
     * The id of the API token that submitted the image (`bootstrap` for the bootstrap admin
     * token); for a content-addressed cached image, the first submitter. Null in rows older
     * than migration 0004. Shown on the workspace view (decision 0021).
     */
    submittedByTokenId: text("submitted_by_token_id"),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [index("images_workspace_created").on(t.workspaceId, t.createdAt), index("images_build").on(t.buildId)],
);

/**
 * `Idempotency-Key` of `POST /v1/images`: the first request with a key reserves it with the
 * hash of its body; a retry with the same body gets the same image, another body a 422.
 * Keys are honoured for 24 hours.
 */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    key: text("key").notNull(),
    /** sha256 hex of the request body as received. */
    requestHash: text("request_hash").notNull(),
    imageId: text("image_id").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.key] })],
);
