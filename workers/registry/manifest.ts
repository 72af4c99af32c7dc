/**
 * Pure manifest parsing: OCI image manifests and indexes, Docker v2 schema 2 manifests and
 * manifest lists. Returns what the registry stores and checks: the media type, the blobs and
 * child manifests it refers to (the GC's mark set) with the sizes their descriptors declare
 * (checked against the stored content), its `subject` and artifact type (the referrers API).
 * Schema 1 is refused, as in current distribution.
 */
import { z } from "zod";
import { boundedIssues } from "../errors.ts";
import { classifyDigest } from "./reference.ts";

/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** Docker v2 schema 2 manifest. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker v2 manifest list. */
export const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Every manifest media type the registry stores. */
export const MANIFEST_MEDIA_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST] as const;
/** Largest manifest accepted: the spec says registries SHOULD accept at least 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const Digest = z.string().refine((d) => classifyDigest(d) === "sha256", "must be a sha256 digest");
const Annotations = z.record(z.string(), z.string());
const Descriptor = z.object({
  mediaType: z.string().min(1),
  digest: Digest,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: Annotations.optional(),
  artifactType: z.string().optional(),
  platform: z.record(z.string(), z.unknown()).optional(),
});
/** One content descriptor. */
export type Descriptor = z.infer<typeof Descriptor>;

const ImageManifest = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: Descriptor,
  layers: z.array(Descriptor),
  subject: Descriptor.optional(),
  annotations: Annotations.optional(),
});
const ImageIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(Descriptor),
  subject: Descriptor.optional(),
  annotations: Annotations.optional(),
});

/** What the registry keeps about a parsed manifest. */
export type ParsedManifest = {
  mediaType: string;
  kind: "manifest" | "index";
  /** Blobs that must be in the repository (foreign layers with `urls` excluded). */
  blobs: string[];
  /** Child manifests that must be in the repository. */
  manifests: string[];
  /** The size the descriptors declare for each of `blobs` and `manifests`: it must be the stored content's. */
  sizes: Record<string, number>;
  subject: string | null;
  artifactType: string | null;
  annotations: Record<string, string> | null;
};

/** A parse result: the manifest, or why it is invalid. */
export type ManifestParse = { ok: true; manifest: ParsedManifest } | { ok: false; message: string; detail?: unknown };

/**
 * Parses manifest bytes sent with `contentType`. The body's `mediaType`, when present, must
 * equal the content type; the structure must match the media type.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ManifestParse {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    return { ok: false, message: "manifest is not valid UTF-8 JSON" };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { ok: false, message: "manifest must be a JSON object" };
  const declared = (json as { mediaType?: unknown }).mediaType;
  const header = contentType?.split(";")[0]?.trim().toLowerCase() || undefined;
  if (declared !== undefined && typeof declared !== "string") return { ok: false, message: "mediaType must be a string" };
  if (declared && header && declared !== header) {
    return { ok: false, message: `Content-Type ${header} does not match the manifest's mediaType ${declared}` };
  }
  const mediaType = declared || header || ("manifests" in json ? OCI_INDEX : OCI_MANIFEST);
  if (!(MANIFEST_MEDIA_TYPES as readonly string[]).includes(mediaType)) {
    return { ok: false, message: `unsupported manifest media type ${mediaType}`, detail: { supported: MANIFEST_MEDIA_TYPES } };
  }
  if (mediaType === OCI_INDEX || mediaType === DOCKER_LIST) {
    const parsed = ImageIndex.safeParse(json);
    if (!parsed.success) return { ok: false, message: "invalid image index", detail: boundedIssues(parsed.error.issues) };
    const index = parsed.data;
    const sizes = declaredSizes(index.manifests);
    if (!sizes.ok) return sizes;
    return {
      ok: true,
      manifest: {
        mediaType,
        kind: "index",
        blobs: [],
        manifests: unique(index.manifests.map((m) => m.digest)),
        sizes: sizes.sizes,
        subject: index.subject?.digest ?? null,
        artifactType: index.artifactType ?? null,
        annotations: index.annotations ?? null,
      },
    };
  }
  const parsed = ImageManifest.safeParse(json);
  if (!parsed.success) return { ok: false, message: "invalid image manifest", detail: boundedIssues(parsed.error.issues) };
  const manifest = parsed.data;
  // Foreign (non-distributable) layers carry `urls`: their bytes live elsewhere, as in distribution.
  const layers = manifest.layers.filter((l) => !l.urls?.length);
  const sizes = declaredSizes([manifest.config, ...layers]);
  if (!sizes.ok) return sizes;
  return {
    ok: true,
    manifest: {
      mediaType,
      kind: "manifest",
      blobs: unique([manifest.config.digest, ...layers.map((l) => l.digest)]),
      manifests: [],
      sizes: sizes.sizes,
      subject: manifest.subject?.digest ?? null,
      artifactType: manifest.artifactType ?? manifest.config.mediaType,
      annotations: manifest.annotations ?? null,
    },
  };
}

/** Each descriptor's declared size by digest; one digest declared with two sizes is invalid. */
function declaredSizes(
  descriptors: readonly Descriptor[],
): { ok: true; sizes: Record<string, number> } | { ok: false; message: string; detail?: unknown } {
  const sizes: Record<string, number> = {};
  for (const { digest, size } of descriptors) {
    const seen = sizes[digest];
    if (seen !== undefined && seen !== size) {
      return { ok: false, message: "descriptors of one digest declare different sizes", detail: { digest, sizes: [seen, size] } };
    }
    sizes[digest] = size;
  }
  return { ok: true, sizes };
}

/** The first of `manifest`'s blobs and child manifests whose stored size is not the declared one, or null. */
export function sizeMismatch(
  manifest: Pick<ParsedManifest, "sizes">,
  stored: ReadonlyMap<string, number>,
): { digest: string; declared: number; stored: number } | null {
  for (const [digest, declared] of Object.entries(manifest.sizes)) {
    const actual = stored.get(digest);
    if (actual !== undefined && actual !== declared) return { digest, declared, stored: actual };
  }
  return null;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
