/**
 * The HTTP API's bodies that the SDK sends and reads: the image submission, the image and
 * build views, and a page of build log. The Worker validates and documents its routes with
 * these schemas (adding OpenAPI names and examples); the SDK takes its types from them.
 */
import { z } from "zod";
import { BUILDER_VERSIONS } from "./builder-version.ts";
import { LayerKey, Sha256Digest } from "./digest.ts";
import { ImageSpecSchema, LayerSpecSchema } from "./layer-spec.ts";
import { EnvName, SecretName, TagName } from "./names.ts";
import { PushRequestFields, PushViewSchema, refusePushFieldsWithoutPush } from "./push.ts";

/** What users see of an image: `queued` covers waiting for a prefix, a fleet slot or a retry. */
export const ImageStatusSchema = z.enum(["queued", "building", "succeeded", "failed", "cancelled", "timeout"]);

/** An image's status. */
export type ImageStatus = z.infer<typeof ImageStatusSchema>;

/** How a build treats the layer cache: `normal` reads and fills it, `force` rebuilds and replaces, `ignore` rebuilds and leaves it. */
export const BuildModeSchema = z.enum(["normal", "force", "ignore"]);

/** A runtime mount: files attached at container start, not built into a layer. */
export const RuntimeMountSchema = z
  .object({
    kind: z.enum(["file", "dir"]),
    remotePath: z.string().startsWith("/").max(4096),
    context: z.object({ digest: Sha256Digest, sizeBytes: z.number().int().nonnegative() }).strict().nullable(),
  })
  .strict();

/** The body of `POST /v1/images`: the image spec plus the submission's own options. Unknown fields are refused. */
export const ImageRequestSchema = z
  .object({
    builderVersion: z.enum(BUILDER_VERSIONS),
    layers: z.array(LayerSpecSchema).min(1).max(256),
    /** Rebuild every layer and replace the cached results. */
    forceBuild: z.boolean().optional(),
    /** Rebuild every layer without reading or replacing the cache. */
    ignoreCache: z.boolean().optional(),
    /** Point this tag at the new image (needs `tags:write`). */
    tag: TagName.optional(),
    /** Per attempt; default 3600, at most 86400. */
    timeoutSeconds: z.number().int().min(60).max(86_400).optional(),
    /** Keys each named secret must hold (`Secret.fromName(name, { requiredKeys })`). */
    requiredSecretKeys: z.record(SecretName, z.array(EnvName).max(256)).optional(),
    /** Files attached at container start; stored and returned as given. */
    runtimeMounts: z.array(RuntimeMountSchema).max(256).optional(),
    ...PushRequestFields,
  })
  .strict()
  .superRefine((body, ctx) => {
    refusePushFieldsWithoutPush(body, ctx);
    // The chain rules (only the root names a base) live with the image spec: apply them, not a copy.
    const chain = ImageSpecSchema.safeParse({ builderVersion: body.builderVersion, layers: body.layers });
    if (!chain.success) for (const issue of chain.error.issues) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  });

/** A submission's body. */
export type ImageRequest = z.infer<typeof ImageRequestSchema>;

/** A Kiln tag pointing at an image, and the OCI reference it is published as (null for a single-word tag). */
export const ImageTagSchema = z.object({ name: z.string(), reference: z.string().nullable() });

/** The answer to a submission: the image and its layers' states. */
export const ImageSubmissionSchema = z.object({
  id: z.string(),
  status: ImageStatusSchema,
  buildId: z.string().nullable(),
  /**
   * Each layer's status; a fully cached image's answer (final at once) also carries every layer's
   * registry result, as `GET /v1/images/{id}` would, so a cached build needs no second request.
   */
  layers: z.array(
    z.object({
      index: z.number().int(),
      key: LayerKey,
      status: ImageStatusSchema,
      cached: z.boolean().optional(),
      digest: z.string().nullable().optional(),
      reference: z.string().nullable().optional(),
      sizeBytes: z.number().int().nullable().optional(),
      buildId: z.string().nullable().optional(),
    }),
  ),
  /** The submission's `tag` and the OCI reference it is published as, when it set one. */
  tags: z.array(ImageTagSchema).optional(),
});

/** One layer of an image view. `cached`: the result came from the workspace's cache, not the image's own build. */
export const LayerViewSchema = z.object({
  index: z.number().int(),
  key: z.string(),
  status: ImageStatusSchema,
  cached: z.boolean(),
  digest: z.string().nullable(),
  reference: z.string().nullable(),
  sizeBytes: z.number().int().nullable(),
  buildId: z.string().nullable(),
});

/** One layer of an image view. */
export type LayerView = z.infer<typeof LayerViewSchema>;

/** Why an image or build failed. */
export const FailureSchema = z.object({
  /** `build` (a step failed), `infra`, `timeout`, `cancelled` or `dependency`. */
  reason: z.string(),
  message: z.string(),
  /** The failing build step's exit code; null for other failures or when the runner reported none. */
  exitCode: z.number().int().nullable(),
  /** The layer the failure concerns, when known. */
  layerKey: z.string().nullable(),
  /** Its index in the image's chain, when known. */
  layerIndex: z.number().int().nullable(),
  /** The last lines of output the runner sent with the failure (oldest first, secrets masked). */
  logTail: z.array(z.string()),
});

/** Why an image or build failed. */
export type Failure = z.infer<typeof FailureSchema>;

/** `GET /v1/images/:id`: an image, its status and every layer's result. */
export const ImageViewSchema = z.object({
  id: z.string(),
  status: ImageStatusSchema,
  buildId: z.string().nullable(),
  mode: BuildModeSchema,
  failure: FailureSchema.nullable(),
  layers: z.array(LayerViewSchema),
  runtimeMounts: z.array(RuntimeMountSchema),
  /** The workspace's tags pointing at this image, by name (always sent by `GET /v1/images/:id`). */
  tags: z.array(ImageTagSchema).optional(),
  /** The submission's push targets and how each ended (absent when it pushes nowhere). */
  pushes: z.array(PushViewSchema).optional(),
  createdAt: z.string(),
});

/** An image as the API shows it. */
export type ImageView = z.infer<typeof ImageViewSchema>;

/** `DELETE /v1/images/:id`: what was deleted. */
export const DeletedImageSchema = z.object({
  id: z.string(),
  deleted: z.literal(true),
  /** The Kiln tags that pointed at the image, removed with it (and the OCI tags they published). */
  tags: z.array(z.string()),
  /** A multi-platform image's (an index's) platform images deleted with it (those no other index names). */
  images: z.array(z.string()).optional(),
});

/** The answer of an image delete. */
export type DeletedImage = z.infer<typeof DeletedImageSchema>;

/** One stored piece of a build's log. */
export const LogChunkSchema = z.object({
  pos: z.number().int(),
  attempt: z.number().int(),
  layerKey: z.string().nullable(),
  stream: z.enum(["stdout", "stderr", "system"]),
  data: z.string(),
  atMs: z.number().int(),
});

/** One stored piece of a build's log. */
export type LogChunk = z.infer<typeof LogChunkSchema>;

/** `GET /v1/builds/:id/logs`: the chunks after a cursor. */
export const LogPageSchema = z.object({
  buildId: z.string(),
  status: z.string(),
  chunks: z.array(LogChunkSchema),
  /** Pass back as `cursor` to continue exactly after the last chunk returned. */
  cursor: z.number().int(),
  /** The build ended and every chunk up to the end was returned. */
  done: z.boolean(),
});

/** A page of build log. */
export type LogPage = z.infer<typeof LogPageSchema>;

/** `POST /v1/contexts/missing`: the digests the server lacks, in request order. */
export const ContextsMissingSchema = z.object({ missing: z.array(Sha256Digest) });

/** A tag as `GET /v1/tags`, `GET /v1/tags/:name` and `PUT /v1/tags/:name` answer it. */
export const TagViewSchema = z.object({
  name: z.string(),
  /** The image (`im-...`) or multi-platform image (image index, `ix-...`) it points at. */
  imageId: z.string(),
  public: z.boolean(),
  /** The OCI reference a `NAME:TAG` tag is published as, `<registry>/<workspace>/NAME:TAG`; null for a single-word tag. */
  reference: z.string().nullable(),
  updatedAt: z.string(),
});

/** A tag as the API shows it. */
export type TagView = z.infer<typeof TagViewSchema>;

/** `GET /v1/tags`: a page of the workspace's tags, by name. */
export const TagListSchema = z.object({
  tags: z.array(TagViewSchema),
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: z.string().nullable(),
});

/** A page of tags. */
export type TagList = z.infer<typeof TagListSchema>;

/**
 * `GET /v1/whoami`: the caller's token and the workspace it acts in; null for an admin token
 * that names none (`x-kiln-workspace`).
 */
export const WhoamiSchema = z.object({
  workspace: z.object({ id: z.string(), name: z.string() }).nullable(),
  token: z.object({ id: z.string(), name: z.string(), kind: z.enum(["admin", "api"]), scopes: z.array(z.string()) }),
});

/** Who a token is. */
export type Whoami = z.infer<typeof WhoamiSchema>;
