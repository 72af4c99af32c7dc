/** GPU request strings (`"any"`, `"T4"`, `"A100-80GB:4"`), parsed and validated. Pure. */
import { InvalidError } from "./errors.ts";

/** A parsed GPU request: an upper-case type and a count of at least one. */
export type GpuConfig = { type: string; count: number };

/** What a caller may pass as `gpu`: a request string, or nothing for a CPU-only step. */
export type GpuSpec = string | null | undefined;

/**
 * GPU types runners can advertise. Modal passes unknown types to its server, which rejects
 * them after the request; Kiln rejects them before any network call.
 */
export const GPU_TYPES = [
  "ANY",
  "T4",
  "L4",
  "A10",
  "A10G",
  "A100",
  "A100-40GB",
  "A100-80GB",
  "L40S",
  "H100",
  "H100!",
  "H200",
  "B200",
] as const;

/** Parses `type[:count]`, upper-casing the type, or returns null for no GPU. */
export function parseGpu(spec: unknown): GpuConfig | null {
  if (spec === null || spec === undefined) return null;
  if (typeof spec !== "string") {
    throw new InvalidError(`Invalid GPU config: ${JSON.stringify(spec)}. Value must be a string like "T4" or "A100-80GB:2", or null.`);
  }
  const [rawType = "", rawCount, ...extra] = spec.split(":");
  const type = rawType.trim().toUpperCase();
  if (extra.length > 0 || type === "") {
    throw new InvalidError(`Invalid GPU config: '${spec}'. Use "TYPE" or "TYPE:COUNT", e.g. "A100-80GB:4".`);
  }
  if (!(GPU_TYPES as readonly string[]).includes(type)) {
    throw new InvalidError(`Unknown GPU type: '${rawType}'. Supported types: ${GPU_TYPES.join(", ")}.`);
  }
  let count = 1;
  if (rawCount !== undefined) {
    if (!/^\d+$/.test(rawCount)) throw new InvalidError(`Invalid GPU count: ${rawCount}. Value must be an integer.`);
    count = Number(rawCount);
    if (count < 1) throw new InvalidError(`Invalid GPU count: ${rawCount}. Value must be at least 1.`);
  }
  return { type, count };
}
