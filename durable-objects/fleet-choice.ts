/**
 * Which fleets may run a job, and in what order to ask them, pure. A fleet qualifies when it
 * has every GPU type the job's layers ask for; fleets an earlier attempt of the same build
 * used go last, so a retry lands on another runner whenever another fleet qualifies.
 */

/** The fields of a fleet this module needs. */
export type FleetInfo = { id: string; gpuTypes: readonly string[]; maxConcurrentBuilds: number };
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

/**
 * Fleets that can run every layer, in the order to try them: not yet tried by this build
 * first, each group in the caller's order (own fleets before shared ones, oldest first).
 */
export function candidateFleets<F extends FleetInfo>(
  fleets: readonly F[],
  layers: readonly { gpu: GpuRequest }[],
  triedFleetIds: readonly string[],
): F[] {
  const needs = gpuRequests(layers);
  const able = fleets.filter((f) => f.maxConcurrentBuilds > 0 && needs.every((gpu) => fleetServesGpu(f.gpuTypes, gpu)));
  const tried = new Set(triedFleetIds);
  return [...able.filter((f) => !tried.has(f.id)), ...able.filter((f) => tried.has(f.id))];
}

/** Why no fleet qualifies, for the build's failure message. */
export function noFleetMessage(fleetCount: number, layers: readonly { gpu: GpuRequest }[]): string {
  if (fleetCount === 0) return "No runner fleet is registered for this workspace. An admin can add one with `POST /v1/fleets`.";
  const needs = gpuRequests(layers).map((g) => `${g!.type} x${g!.count}`);
  return needs.length
    ? `No enabled runner fleet offers the GPUs this build needs (${needs.join(", ")}). Register a fleet with them, or change the layer's gpu.`
    : "No enabled runner fleet accepts builds (every fleet has maxConcurrentBuilds 0).";
}
