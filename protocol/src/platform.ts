/**
 * Target platforms of an image (`os/arch`, as OCI image indexes and `buildah --platform` write
 * them). A layer without a `platform` builds for `DEFAULT_PLATFORM`: every key computed before
 * platforms existed was built for it, so it stays a fixed fact of the key, never a setting of
 * a deployment (a key must mean the same bytes wherever it is computed). Decision 0023.
 */
import { z } from "zod";

/** The platforms Kiln builds for. Variants (arm/v7) are left out until a runner can test them. */
export const PLATFORMS = ["linux/amd64", "linux/arm64"] as const;

/** A platform Kiln builds for. */
export type Platform = (typeof PLATFORMS)[number];

/** The platform of a layer that names none (and of every image built before platforms existed). */
export const DEFAULT_PLATFORM: Platform = "linux/amd64";

/** A platform as the API accepts it: one of `PLATFORMS`. */
export const PlatformSchema = z.enum(PLATFORMS);

/** The platforms of one multi-platform request: 1 to all of `PLATFORMS`, no repeats. */
export const PlatformListSchema = z
  .array(PlatformSchema)
  .min(1)
  .max(PLATFORMS.length)
  .refine((list) => new Set(list).size === list.length, "each platform at most once");

/** Whether `value` is a platform Kiln builds for. */
export function isPlatform(value: string): value is Platform {
  return (PLATFORMS as readonly string[]).includes(value);
}

/** The OCI `os` and `architecture` of a platform, as an index entry's `platform` object. */
export function ociPlatform(platform: Platform): { os: string; architecture: string } {
  const [os, architecture] = platform.split("/") as [string, string];
  return { os, architecture };
}

/** The platform a Node process runs on (`process.platform`, `process.arch`), or null when Kiln does not build for it. */
export function platformOfNode(os: string, arch: string): Platform | null {
  const name = `${os}/${arch === "x64" ? "amd64" : arch}`;
  return isPlatform(name) ? name : null;
}

/** The QEMU binfmt_misc handler names (`/proc/sys/fs/binfmt_misc/qemu-<name>`) that emulate a platform. */
export const QEMU_HANDLERS: Readonly<Record<Platform, string>> = { "linux/amd64": "qemu-x86_64", "linux/arm64": "qemu-aarch64" };

/** The `uname -m` machine name of a platform (what python-build-standalone and busybox call the architecture). */
export const MACHINE_NAMES: Readonly<Record<Platform, string>> = { "linux/amd64": "x86_64", "linux/arm64": "aarch64" };

/**
 * Platforms a fleet offers: built natively on its machines' own architecture, and by
 * emulation (QEMU) on others. Both default to the default platform's native build only.
 */
export const FleetPlatformsSchema = z
  .object({
    native: z.array(PlatformSchema).max(PLATFORMS.length),
    emulated: z.array(PlatformSchema).max(PLATFORMS.length),
  })
  .strict();

/** Platforms a fleet offers. */
export type FleetPlatforms = z.infer<typeof FleetPlatformsSchema>;

/** Every platform `fleets` offer, natively or by emulation, in `PLATFORMS` order. */
export function offeredPlatforms(fleets: readonly { platforms: FleetPlatforms }[]): Platform[] {
  const offered = new Set(fleets.flatMap((f) => [...f.platforms.native, ...f.platforms.emulated]));
  return PLATFORMS.filter((p) => offered.has(p));
}

/** The message of a refused platform: which were asked for and which the fleets offer. */
export function platformUnavailableMessage(missing: readonly string[], offered: readonly string[]): string {
  const have = offered.length ? offered.join(", ") : "none (no enabled fleet)";
  return (
    `No runner fleet of this workspace builds ${missing.join(", ")}. The fleets offer: ${have}. ` +
    "Register a fleet that builds it (`kiln fleet add --platform`), or leave the platform out."
  );
}
