// Which fleets may run a job, pure: GPU matching, platforms (native before emulated, none refused)
// and retry-on-another-fleet ordering.

import type { FleetPlatforms, Platform } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { candidateFleets, fleetServesGpu, noFleetMessage, platformSupport } from "../../durable-objects/fleet-choice.ts";

const AMD64_ONLY: FleetPlatforms = { native: ["linux/amd64"], emulated: [] };
const fleet = (id: string, gpuTypes: string[], maxConcurrentBuilds = 2, platforms = AMD64_ONLY) => ({
  id,
  gpuTypes,
  maxConcurrentBuilds,
  platforms,
});
const on = (platform: Platform) => [
  { gpu: null, platform },
  { gpu: null, platform },
];

describe("fleet choice", () => {
  it("matches GPU requests with Modal's upgrade rules", () => {
    expect(fleetServesGpu([], null)).toBe(true);
    expect(fleetServesGpu([], { type: "T4", count: 1 })).toBe(false);
    expect(fleetServesGpu(["T4"], { type: "ANY", count: 1 })).toBe(true);
    expect(fleetServesGpu(["A100-80GB"], { type: "A100", count: 1 })).toBe(true);
    expect(fleetServesGpu(["H200"], { type: "H100", count: 1 })).toBe(true);
    expect(fleetServesGpu(["H200"], { type: "H100!", count: 1 })).toBe(false);
    expect(fleetServesGpu(["H100"], { type: "H100!", count: 1 })).toBe(true);
    expect(fleetServesGpu(["l4"], { type: "L4", count: 2 })).toBe(true);
  });

  it("keeps fleets that serve every layer, untried ones first", () => {
    const fleets = [fleet("cpu", []), fleet("t4", ["T4"]), fleet("both", ["T4", "A100-40GB"]), fleet("off", ["T4"], 0)];
    const layers = [{ gpu: null }, { gpu: { type: "T4", count: 1 } }];
    expect(candidateFleets(fleets, layers, []).map((f) => f.id)).toEqual(["t4", "both"]);
    expect(candidateFleets(fleets, layers, ["t4"]).map((f) => f.id)).toEqual(["both", "t4"]);
    expect(candidateFleets(fleets, [...layers, { gpu: { type: "A100", count: 1 } }], []).map((f) => f.id)).toEqual(["both"]);
  });

  it("says why nothing qualifies", () => {
    expect(noFleetMessage([], [])).toMatch(/No runner fleet is registered/);
    expect(noFleetMessage([fleet("a", []), fleet("b", [])], [{ gpu: { type: "H100", count: 8 } }])).toMatch(/H100 x8/);
  });

  it("sends a platform to fleets building it natively first, then to those emulating it", () => {
    const fleets = [
      fleet("amd", []),
      fleet("emu", [], 2, { native: ["linux/amd64"], emulated: ["linux/arm64"] }),
      fleet("arm", [], 2, { native: ["linux/arm64"], emulated: [] }),
    ];
    expect(candidateFleets(fleets, on("linux/arm64"), []).map((f) => f.id)).toEqual(["arm", "emu"]);
    // A retry still prefers native fleets; among them the untried first.
    expect(candidateFleets(fleets, on("linux/arm64"), ["arm"]).map((f) => f.id)).toEqual(["arm", "emu"]);
    expect(candidateFleets(fleets, on("linux/amd64"), []).map((f) => f.id)).toEqual(["amd", "emu"]);
    // Layers without a platform build for the default one.
    expect(candidateFleets(fleets, [{ gpu: null }], ["amd"]).map((f) => f.id)).toEqual(["emu", "amd"]);
    expect(platformSupport(AMD64_ONLY, "linux/arm64")).toBeNull();
  });

  it("gives a fleet without arm64 no arm64 jobs, and names the platforms the fleets offer", () => {
    const fleets = [fleet("amd", []), fleet("amd2", [])];
    expect(candidateFleets(fleets, on("linux/arm64"), [])).toEqual([]);
    expect(candidateFleets(fleets, on("linux/amd64"), []).map((f) => f.id)).toEqual(["amd", "amd2"]);
    const message = noFleetMessage(fleets, on("linux/arm64"));
    expect(message).toContain("builds linux/arm64");
    expect(message).toContain("The fleets offer: linux/amd64.");
  });
});
