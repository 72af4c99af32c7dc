/**
 * The wire shapes of multi-platform images (decision 0023): an image index groups one image
 * per platform, each submitted as its own chain (`POST /v1/images`, layers stamped with the
 * platform). The index has one status; once every platform's image succeeded the orchestrator
 * writes an OCI image index to the built-in registry and shows its digest next to each
 * platform's.
 */
import { z } from "zod";
import { ImageStatusSchema, ImageTagSchema } from "./api.ts";
import { TagName } from "./names.ts";
import { PlatformSchema } from "./platform.ts";
import { PushRequestFields, PushViewSchema, refusePushFieldsWithoutPush } from "./push.ts";

/**
 * `POST /v1/image-indexes`: the per-platform images to group, one per platform; optionally a
 * Kiln tag for the index (needs `tags:write`) and external registries to copy the whole index
 * to once it is assembled (the same push fields as `POST /v1/images`).
 */
export const ImageIndexRequestSchema = z
  .object({
    images: z
      .array(z.object({ platform: PlatformSchema, imageId: z.string().min(1).max(64) }).strict())
      .min(1)
      .max(8)
      .refine((list) => new Set(list.map((e) => e.platform)).size === list.length, "each platform at most once"),
    /** Point this tag at the index (its OCI tag resolves to the OCI image index). */
    tag: TagName.optional(),
    ...PushRequestFields,
  })
  .strict()
  .superRefine(refusePushFieldsWithoutPush);

/** A request to group per-platform images. */
export type ImageIndexRequest = z.infer<typeof ImageIndexRequestSchema>;

/** One platform of an index view: its image, build, status and (once built) manifest digest and pinned reference. */
export const IndexPlatformViewSchema = z.object({
  platform: PlatformSchema,
  imageId: z.string(),
  buildId: z.string().nullable(),
  status: ImageStatusSchema,
  digest: z.string().nullable(),
  reference: z.string().nullable(),
});

/** `GET /v1/image-indexes/:id`: the index's one status, its digest once assembled, and every platform's. */
export const ImageIndexViewSchema = z.object({
  id: z.string(),
  /** Queued or building until every platform is final; failed (or cancelled, timeout) when one is; succeeded when all are. */
  status: ImageStatusSchema,
  /** The OCI image index's digest and pinned reference, once every platform succeeded. */
  digest: z.string().nullable(),
  reference: z.string().nullable(),
  platforms: z.array(IndexPlatformViewSchema),
  /** Why the index failed or cannot be assembled (a platform's image failed or was deleted, or is not of its platform); null otherwise. */
  message: z.string().nullable(),
  createdAt: z.string(),
  /** The Kiln tags pointing at the index, with their OCI references (absent when none). */
  tags: z.array(ImageTagSchema).optional(),
  /** The index's external push targets and how each ended (absent when it pushes nowhere). */
  pushes: z.array(PushViewSchema).optional(),
  /** The build that copies the index to its push targets (its log has the push lines); absent without push. */
  pushBuildId: z.string().nullable().optional(),
});

/** An image index as the API shows it. */
export type ImageIndexView = z.infer<typeof ImageIndexViewSchema>;

/** `GET /v1/platforms`: the platforms the workspace's enabled fleets build, and how. */
export const PlatformsViewSchema = z.object({
  /** The platform of a layer that names none. */
  default: PlatformSchema,
  platforms: z.array(z.object({ platform: PlatformSchema, nativeFleets: z.number().int(), emulatingFleets: z.number().int() })),
});

/** The platforms a workspace's fleets offer. */
export type PlatformsView = z.infer<typeof PlatformsViewSchema>;
