/**
 * GPUs: what this machine has (from `nvidia-smi`, or an operator override), whether a
 * layer's request can be met, and exclusive allocation of devices to concurrent builds.
 */
import { execFile } from "node:child_process";
import type { GpuConfig } from "@kiln-build/protocol";

/** One GPU of this machine. `type` is the Kiln GPU type, or null if the model is unknown. */
export type GpuDevice = { index: number; uuid: string; name: string; memoryMiB: number; type: string | null };

/** Runs `nvidia-smi` and lists the GPUs; an absent tool means no GPUs. */
export async function detectGpus(nvidiaSmi = "nvidia-smi"): Promise<GpuDevice[]> {
  const stdout = await new Promise<string | null>((resolve) => {
    execFile(nvidiaSmi, ["--query-gpu=index,name,uuid,memory.total", "--format=csv,noheader,nounits"], { timeout: 15_000 }, (error, out) =>
      resolve(error ? null : out),
    );
  });
  return stdout === null ? [] : parseNvidiaSmi(stdout);
}

/** Parses `nvidia-smi --query-gpu=index,name,uuid,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(csv: string): GpuDevice[] {
  const devices: GpuDevice[] = [];
  for (const line of csv.split("\n")) {
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length < 4 || !/^\d+$/.test(fields[0]!)) continue;
    const [index, name, uuid, memory] = fields as [string, string, string, string];
    const memoryMiB = Number(memory) || 0;
    devices.push({ index: Number(index), name, uuid, memoryMiB, type: gpuTypeOf(name, memoryMiB) });
  }
  return devices;
}

/** Maps an NVIDIA product name to a Kiln GPU type ("NVIDIA A100-SXM4-80GB" -> "A100-80GB"). */
export function gpuTypeOf(name: string, memoryMiB: number): string | null {
  const n = name.toUpperCase();
  if (/\bB200\b/.test(n)) return "B200";
  if (/\bH200\b/.test(n)) return "H200";
  if (/\bH100\b/.test(n)) return "H100";
  if (/\bL40S\b/.test(n)) return "L40S";
  if (/\bA100\b/.test(n)) return /80\s?GB/.test(n) || memoryMiB > 60_000 ? "A100-80GB" : "A100-40GB";
  if (/\bA10G\b/.test(n)) return "A10G";
  if (/\bA10\b/.test(n)) return "A10";
  if (/\bL4\b/.test(n)) return "L4";
  if (/\bT4\b/.test(n)) return "T4";
  return null;
}

/** Parses an operator override such as "H100:8" or "T4:1,L4:2" into devices. */
export function gpusFromOverride(spec: string): GpuDevice[] {
  const devices: GpuDevice[] = [];
  for (const part of spec
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [type = "", count = "1"] = part.split(":");
    if (!/^\d+$/.test(count)) throw new Error(`invalid GPU override ${JSON.stringify(part)}: expected TYPE[:COUNT]`);
    for (let i = 0; i < Number(count); i++) {
      const index = devices.length;
      devices.push({ index, uuid: `override-${index}`, name: type.toUpperCase(), memoryMiB: 0, type: type.toUpperCase() });
    }
  }
  return devices;
}

/**
 * Whether a device of `deviceType` serves a request for `requested`. As in Modal, "ANY" takes
 * anything, "A100" either memory size, "H100" may be served by an H200, and "H100!" only by an H100.
 */
export function gpuMatches(requested: string, deviceType: string | null): boolean {
  if (deviceType === null) return requested === "ANY";
  switch (requested) {
    case "ANY":
      return true;
    case "A100":
      return deviceType === "A100-40GB" || deviceType === "A100-80GB";
    case "H100":
      return deviceType === "H100" || deviceType === "H200";
    case "H100!":
      return deviceType === "H100";
    default:
      return deviceType === requested;
  }
}

/** `[{ type, count }]` of this machine, for `/v1/capabilities`. */
export function advertise(devices: readonly GpuDevice[]): { type: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const d of devices) counts.set(d.type ?? d.name, (counts.get(d.type ?? d.name) ?? 0) + 1);
  return [...counts].map(([type, count]) => ({ type, count }));
}

/** Hands out GPUs exclusively to concurrent builds, first come first served. */
export class GpuPool {
  readonly #devices: readonly GpuDevice[];
  readonly #busy = new Set<number>();
  #waiters: (() => void)[] = [];

  constructor(devices: readonly GpuDevice[]) {
    this.#devices = devices;
  }

  /** Every device of this machine. */
  get devices(): readonly GpuDevice[] {
    return this.#devices;
  }

  /** Whether this machine could ever serve `request`; if not, a sentence saying why. */
  check(request: GpuConfig): string | null {
    const matching = this.#devices.filter((d) => gpuMatches(request.type, d.type)).length;
    if (matching >= request.count) return null;
    const have =
      advertise(this.#devices)
        .map((g) => `${g.count}x ${g.type}`)
        .join(", ") || "no GPUs";
    return `this runner cannot provide ${request.count}x ${request.type} (it has ${have})`;
  }

  /** Waits for `request.count` free matching devices and reserves them. */
  async acquire(request: GpuConfig, signal?: AbortSignal): Promise<{ devices: GpuDevice[]; release: () => void }> {
    for (;;) {
      signal?.throwIfAborted();
      const free = this.#devices.filter((d) => !this.#busy.has(d.index) && gpuMatches(request.type, d.type)).slice(0, request.count);
      if (free.length === request.count) {
        for (const d of free) this.#busy.add(d.index);
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          for (const d of free) this.#busy.delete(d.index);
          for (const wake of this.#waiters.splice(0)) wake();
        };
        return { devices: free, release };
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    }
  }
}
