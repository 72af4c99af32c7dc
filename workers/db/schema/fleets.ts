/** Runner fleets: where builds are dispatched, and with which signing secret. */
import type { FleetPlatforms } from "@kiln-build/protocol";
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

/** A runner fleet registered by a workspace (or, with a null workspace, shared by all). */
export const fleets = sqliteTable(
  "fleets",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id").references(() => workspaces.id),
    name: text("name").notNull(),
    /** The fleet's dispatch endpoint (the runner's `POST /v1/jobs`). */
    url: text("url").notNull(),
    /** The Standard Webhooks signing secret, AES-GCM encrypted under KILN_SECRET_KEY (base64 iv||ciphertext). */
    signingSecretEnc: text("signing_secret_enc").notNull(),
    /** JSON array of GPU types the fleet's machines have, e.g. ["T4","A100-80GB"]; [] for CPU only. */
    gpuTypes: text("gpu_types", { mode: "json" }).$type<string[]>().notNull(),
    maxConcurrentBuilds: integer("max_concurrent_builds").notNull(),
    /**
     * JSON `{native, emulated}`: the platforms the fleet builds on its own architecture and under
     * QEMU (decision 0023). Fleets registered before platforms existed build linux/amd64 natively.
     */
    platforms: text("platforms", { mode: "json" })
      .$type<FleetPlatforms>()
      .notNull()
      .default({ native: ["linux/amd64"], emulated: [] }),
    /**
     * Whether builds whose layers use secrets may be dispatched here, with the secret values.
     * Set only with `fleets:admin` (workers/routes/fleets.ts); false for new fleets.
     */
    trustedWithSecrets: integer("trusted_with_secrets", { mode: "boolean" }).notNull().default(false),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(sql`(unixepoch('subsec') * 1000)`),
    disabledAt: integer("disabled_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("fleets_workspace").on(t.workspaceId)],
);
