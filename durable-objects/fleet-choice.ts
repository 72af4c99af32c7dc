/**
 * Which fleets may run a job, and in what order to ask them, pure. A fleet qualifies when it
 * has every GPU type the job's layers ask for; fleets an earlier attempt of the same build
 * used go last, so a retry lands on another runner whenever another fleet qualifies. A fleet
 * also qualifies only when it builds the job's platform: fleets that build it natively come
 * before those that emulate it (decision 0023).
 */
import { DEFAULT_PLATFORM, type FleetPlatforms, offeredPlatforms, platformUnavailableMessage } from "@kiln-build/protocol";

/** The fields of a fleet this module needs. */
export type FleetInfo = { id: string; gpuTypes: readonly string[]; maxConcurrentBuilds: number; platforms: FleetPlatforms };
/** What fleet choice reads of a layer: its GPU request and platform (absent: the default). */
export type LayerNeeds = { gpu: GpuRequest; platform?: string | undefined };
/** A layer's GPU request, as in the layer spec. */
export type GpuRequest = { type: string; count: number } | null;

// Modal semantics: "A100" may be served by either memory size, "H100" may be upgraded to an
// H200; a trailing "!" pins the exact type.
const ACCEPTS: Record<string, readonly string[]> = {
  A100: ["A100", "A100-40GB", "A100-80GB"],
  H100: ["H100", "H200"],
};

/** Whether a fleet with `gpuTypes` can serve `gpu`. */
export function fleetServesGpu(gpuTypes: readonly string[], gpu: GpuRequest): boolean {
  if (gpu === null) return true;
  const have = new Set(gpuTypes.map((t) => t.toUpperCase()));
  const wanted = gpu.type.toUpperCase();
  if (wanted === "ANY") return have.size > 0;
  if (wanted.endsWith("!")) return have.has(wanted.slice(0, -1));
  return (ACCEPTS[wanted] ?? [wanted]).some((t) => have.has(t));
}

/** The distinct GPU requests of a job's layers. */
export function gpuRequests(layers: readonly { gpu: GpuRequest }[]): GpuRequest[] {
  const seen = new Map<string, GpuRequest>();
  for (const { gpu } of layers) if (gpu) seen.set(`${gpu.type}`, gpu);
  return [...seen.values()];
}

/** How a fleet builds `platform`: natively, by emulation, or not at all. */
export function platformSupport(platforms: FleetPlatforms, platform: string): "native" | "emulated" | null {
  if ((platforms.native as readonly string[]).includes(platform)) return "native";
  if ((platforms.emulated as readonly string[]).includes(platform)) return "emulated";
  return null;
}

/**
 * Fleets that can run every layer, in the order to try them: fleets building the job's
 * platform natively before those emulating it; within each, not yet tried by this build first,
 * each group in the caller's order (own fleets before shared ones, oldest first).
 */
export function candidateFleets<F extends FleetInfo>(
  fleets: readonly F[],
  layers: readonly LayerNeeds[],
  triedFleetIds: readonly string[],
): F[] {
  const needs = gpuRequests(layers);
  const platform = layers[0]?.platform ?? DEFAULT_PLATFORM;
  const able = fleets.filter((f) => f.maxConcurrentBuilds > 0 && needs.every((gpu) => fleetServesGpu(f.gpuTypes, gpu)));
  const tried = new Set(triedFleetIds);
  const ordered = (group: F[]) => [...group.filter((f) => !tried.has(f.id)), ...group.filter((f) => tried.has(f.id))];
  return [
    ...ordered(able.filter((f) => platformSupport(f.platforms, platform) === "native")),
    ...ordered(able.filter((f) => platformSupport(f.platforms, platform) === "emulated")),
  ];
}

/** Why no fleet qualifies, for the build's failure message. */
export function noFleetMessage(fleets: readonly FleetInfo[], layers: readonly LayerNeeds[]): string {
  if (fleets.length === 0) return "No runner fleet is registered for this workspace. An admin can add one with `POST /v1/fleets`.";
  const platform = layers[0]?.platform ?? DEFAULT_PLATFORM;
  if (!fleets.some((f) => platformSupport(f.platforms, platform) !== null))
    return platformUnavailableMessage([platform], offeredPlatforms(fleets));
  const needs = gpuRequests(layers).map((g) => `${g!.type} x${g!.count}`);
  return needs.length
    ? `No enabled runner fleet offers the GPUs this build needs (${needs.join(", ")}). Register a fleet with them, or change the layer's gpu.`
    : "No enabled runner fleet accepts builds (every fleet has maxConcurrentBuilds 0).";
}
