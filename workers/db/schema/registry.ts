/**
 * The built-in OCI registry's index (docs/registry.md). Bytes live in R2 (bucket REGISTRY);
 * D1 holds what points at them: blobs by digest, which repositories may see a blob,
 * manifests by (repository, digest), the references a manifest makes (the GC's mark set),
 * and tags as pointers.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { workspaces } from "./workspaces.ts";

const now = sql`(unixepoch('subsec') * 1000)`;

/** A repository `<workspace name>/<path>`; created by its first push. */
export const registryRepositories = sqliteTable(
  "registry_repositories",
  {
    name: text("name").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id),
    /** Public repositories answer pulls without credentials (`PUT /v1/registry/repositories/{name}`). */
    public: integer("public", { mode: "boolean" }).notNull().default(false),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(now),
  },
  (t) => [index("registry_repositories_workspace").on(t.workspaceId)],
);

/**
 * One verified blob, shared by every repository that links it. `r2Key` is
 * `blobs/sha256/<hex>` for blobs written in one request, or the key of the multipart upload a
 * chunked push assembled (R2 has no rename: see docs/decisions/0011-registry-upload-sessions.md).
 */
export const registryBlobs = sqliteTable("registry_blobs", {
  digest: text("digest").primaryKey(),
  sizeBytes: integer("size_bytes").notNull(),
  r2Key: text("r2_key").notNull(),
  createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(now),
  /** Last upload, mount or manifest that touched it: the GC's grace period counts from here. */
  touchedAt: integer("touched_at", { mode: "timestamp_ms" }).notNull().default(now),
});

/** Blob visibility: a repository may read a blob only once it pushed or mounted it. */
export const registryRepositoryBlobs = sqliteTable(
  "registry_repository_blobs",
  {
    repository: text("repository").notNull(),
    digest: text("digest").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.repository, t.digest] }), index("registry_repository_blobs_digest").on(t.digest)],
);

/** A manifest (image manifest or index) stored in a repository; bytes at R2 `manifests/sha256/<hex>`. */
export const registryManifests = sqliteTable(
  "registry_manifests",
  {
    repository: text("repository").notNull(),
    digest: text("digest").notNull(),
    mediaType: text("media_type").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    /** The `subject` digest (referrers API), if any. */
    subject: text("subject"),
    /** `artifactType`, else the config media type (what the referrers API reports). */
    artifactType: text("artifact_type"),
    /** JSON object of the manifest's annotations, for referrers descriptors. */
    annotations: text("annotations", { mode: "json" }).$type<Record<string, string>>(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(now),
  },
  (t) => [
    primaryKey({ columns: [t.repository, t.digest] }),
    index("registry_manifests_subject").on(t.repository, t.subject),
    index("registry_manifests_digest").on(t.digest),
  ],
);

/** Every digest a manifest refers to: blobs (config, layers) and child manifests. The GC marks from here. */
export const registryManifestRefs = sqliteTable(
  "registry_manifest_refs",
  {
    repository: text("repository").notNull(),
    manifest: text("manifest").notNull(),
    child: text("child").notNull(),
    kind: text("kind", { enum: ["blob", "manifest"] }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.repository, t.manifest, t.child] }), index("registry_manifest_refs_child").on(t.child)],
);

/** Tags: pointers from a name to a manifest digest in one repository. */
export const registryTags = sqliteTable(
  "registry_tags",
  {
    repository: text("repository").notNull(),
    tag: text("tag").notNull(),
    digest: text("digest").notNull(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.repository, t.tag] }), index("registry_tags_digest").on(t.repository, t.digest)],
);
