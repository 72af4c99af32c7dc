/**
 * The OCI image index of a multi-platform image, pure: one descriptor per platform's image
 * manifest, in `PLATFORMS` order, so the same images always give the same bytes and digest
 * (assembling twice, or concurrently, writes the same content-addressed manifest).
 */
import { ociPlatform, PLATFORMS, type Platform } from "@kiln-build/protocol";

/** OCI image index media type. */
export const OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json";

/** One platform's image manifest, as stored in the registry. */
export type PlatformManifest = { platform: Platform; digest: string; sizeBytes: number; mediaType: string };

/** The index's canonical bytes. */
export function indexManifestBytes(entries: readonly PlatformManifest[]): Uint8Array {
  const sorted = [...entries].sort((a, b) => PLATFORMS.indexOf(a.platform) - PLATFORMS.indexOf(b.platform));
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests: sorted.map((e) => ({ mediaType: e.mediaType, digest: e.digest, size: e.sizeBytes, platform: ociPlatform(e.platform) })),
  };
  return new TextEncoder().encode(JSON.stringify(index));
}

/**
 * The platform an image config declares (`os`/`architecture`), or null when it is not one Kiln
 * builds: what the runner actually produced, checked against the platform the index files it under.
 */
export function configPlatform(config: unknown): string | null {
  if (typeof config !== "object" || config === null) return null;
  const { os, architecture } = config as { os?: unknown; architecture?: unknown };
  return typeof os === "string" && typeof architecture === "string" ? `${os}/${architecture}` : null;
}
