// The timeline's raw material from real buildah builds: `phases` events with each layer's base
// pull, steps (with their Dockerfile lines), commit and push, in order on the runner's clock,
// the failing step marked failed with its exit code, and every span ended and delivered before
// the final event. A lone root layer, then a chain (two layers in one buildah session).
import type { RunnerEvent, RunnerPhase } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { Image } from "../../sdk/src/index.ts";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { dispatch, jobFromImage } from "./helpers/jobs.ts";

const harness = useBuildHarness({ base: "busybox" });

/** The last report of every span (a span is reported when it starts and again when it ends), by layer. */
function spansByLayer(events: readonly RunnerEvent[]): Map<string, RunnerPhase[]> {
  const latest = new Map<number, RunnerPhase>();
  for (const e of events) if (e.type === "phases") for (const p of e.phases) latest.set(p.span, p);
  const byLayer = new Map<string, RunnerPhase[]>();
  for (const p of [...latest.values()].sort((a, b) => a.span - b.span)) byLayer.set(p.layerKey, [...(byLayer.get(p.layerKey) ?? []), p]);
  return byLayer;
}

function expectEndedInOrder(phases: readonly RunnerPhase[]): void {
  for (const p of phases) {
    expect(p.endedAtMs, `${p.kind} ${p.step} ended`).not.toBeNull();
    expect(p.endedAtMs!).toBeGreaterThanOrEqual(p.startedAtMs);
  }
  // Build phases follow each other; the push may overlap the next layer, never precede its own build.
  const build = phases.filter((p) => p.kind !== "push" && p.kind !== "inputs");
  for (let i = 1; i < build.length; i++) expect(build[i]!.startedAtMs).toBeGreaterThanOrEqual(build[i - 1]!.endedAtMs!);
  const push = phases.find((p) => p.kind === "push");
  if (push && build.length) expect(push.startedAtMs).toBeGreaterThanOrEqual(build.at(-1)!.endedAtMs!);
}

describe("phase spans from a buildah build", () => {
  it("reports a chain's pull, steps and pushes per layer, and the failing step with its exit code, before the final event", async () => {
    const { orchestrator } = harness;
    const image = Image.fromRegistry(harness.baseRef).runCommands("echo first > /first.txt").runCommands("echo about to fail; exit 7");
    const job = await jobFromImage(image, { orchestrator, registryHost: harness.registry.host });
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    const final = await orchestrator.final();
    expect(final).toMatchObject({ type: "failed", reason: "build", exitCode: 7 });
    const lastPhases = orchestrator.events.findLastIndex((e) => e.type === "phases");
    expect(lastPhases).toBeLessThan(orchestrator.events.indexOf(final));

    const spans = spansByLayer(orchestrator.events);
    const [root, first, failing] = job.layers.map((l) => spans.get(l.key) ?? []);
    // The root layer builds alone (its FROM pulls the base, buildah commits it), the next two as one chain.
    expect(root!.map((p) => [p.kind, p.outcome])).toEqual([
      ["pull", "ok"],
      ["commit", "ok"],
      ["push", "ok"],
    ]);
    expect(root![0]!.line).toMatch(/^FROM /);
    expect(first!.map((p) => [p.kind, p.outcome])).toEqual([
      ["pull", "ok"],
      ["step", "ok"],
      ["push", "ok"],
    ]);
    expect(first![1]!.line).toContain("echo first > /first.txt");
    const failed = failing!.find((p) => p.outcome === "failed");
    expect(failed).toMatchObject({ kind: "step", exitCode: 7 });
    expect(failed!.line).toContain("exit 7");
    expect(failing!.some((p) => p.kind === "push")).toBe(false);
    for (const phases of [root!, first!, failing!]) expectEndedInOrder(phases);
    // Steps carry the numbers buildah printed for the joined chain.
    expect(failed!.step).toBe(failed!.totalSteps);
  }, 300_000);

  it("reports a lone layer's pull, commit and push", async () => {
    const { orchestrator } = harness;
    orchestrator.events.length = 0;
    const job = await jobFromImage(Image.fromRegistry(harness.baseRef), { orchestrator, registryHost: harness.registry.host });
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    expect(await orchestrator.final()).toMatchObject({ type: "succeeded" });
    const phases = spansByLayer(orchestrator.events).get(job.layers[0]!.key) ?? [];
    expect(phases.map((p) => p.kind)).toEqual(["pull", "commit", "push"]);
    expect(phases.every((p) => p.outcome === "ok")).toBe(true);
    expectEndedInOrder(phases);
  }, 300_000);
});
