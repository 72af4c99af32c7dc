/**
 * The platforms this machine builds: natively its own architecture, by emulation every other
 * platform whose QEMU handler is registered and enabled in binfmt_misc (what lets buildah run
 * another architecture's RUN steps). Reported in `GET /v1/capabilities`; the operator declares
 * the same at fleet registration (`kiln fleet add --platform`), see docs/platforms.md.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { DEFAULT_PLATFORM, type FleetPlatforms, PLATFORMS, type Platform, platformOfNode, QEMU_HANDLERS } from "@kiln-build/protocol";

/** Where the kernel lists binfmt_misc handlers. */
export const BINFMT_MISC_DIR = "/proc/sys/fs/binfmt_misc";

/** Whether a binfmt_misc handler file's text says the handler is enabled (its first line). */
export function binfmtHandlerEnabled(text: string): boolean {
  return text.split("\n")[0]?.trim() === "enabled";
}

/** The platforms of a machine running on `os`/`arch` (Node's names) with these enabled QEMU handler names. */
export function platformsOf(os: string, arch: string, enabledHandlers: ReadonlySet<string>): FleetPlatforms {
  const own = platformOfNode(os, arch);
  const native = own ? [own] : [];
  const emulated = PLATFORMS.filter((p) => p !== own && enabledHandlers.has(QEMU_HANDLERS[p]));
  return { native, emulated };
}

/** Detects this machine's platforms (a missing binfmt_misc mount means no emulation). */
export async function detectPlatforms(binfmtDir = BINFMT_MISC_DIR): Promise<FleetPlatforms> {
  const enabled = new Set<string>();
  for (const handler of Object.values(QEMU_HANDLERS)) {
    const text = await readFile(path.join(binfmtDir, handler), "utf8").catch(() => null);
    if (text !== null && binfmtHandlerEnabled(text)) enabled.add(handler);
  }
  return platformsOf(process.platform, process.arch, enabled);
}

/**
 * Why this machine cannot build a job for `platform` (absent: the default), or null when it can.
 * The orchestrator sends jobs only to fleets that declare the platform; this catches a fleet
 * declared with more than its machines do (QEMU missing or disabled on this one).
 */
export function platformProblem(platforms: FleetPlatforms, platform: string | undefined): string | null {
  const wanted = platform ?? DEFAULT_PLATFORM;
  const builds = [...platforms.native, ...platforms.emulated];
  if ((builds as readonly string[]).includes(wanted)) return null;
  return (
    `this runner cannot build ${wanted} (it builds ${builds.join(", ") || "no platform Kiln supports"}; ` +
    `emulation needs the QEMU binfmt_misc handler ${QEMU_HANDLERS[wanted as Platform] ?? "for it"} enabled); ` +
    "the fleet's declared platforms should match its runners (PATCH /v1/fleets/<id> platforms)"
  );
}
