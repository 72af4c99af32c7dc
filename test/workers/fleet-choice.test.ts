// Which fleets may run a job, pure: GPU matching and retry-on-another-fleet ordering.
import { describe, expect, it } from "vitest";
import { candidateFleets, fleetServesGpu, noFleetMessage } from "../../durable-objects/fleet-choice.ts";

const fleet = (id: string, gpuTypes: string[], maxConcurrentBuilds = 2) => ({ id, gpuTypes, maxConcurrentBuilds });

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
    expect(noFleetMessage(0, [])).toMatch(/No runner fleet is registered/);
    expect(noFleetMessage(2, [{ gpu: { type: "H100", count: 8 } }])).toMatch(/H100 x8/);
  });
});
