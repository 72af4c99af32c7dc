// A chain of layers built in one buildah session (chain-plan.ts, chain-build.ts), for real:
// each layer's image is its own step image (a base of the next, holding only its own steps),
// published as config + manifest over the last image's blobs; each layer's RUN steps see
// only that layer's secrets; log lines belong to the layer whose step printed them; and the
// job leaves no step images behind in the runner's storage.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { imageConfig, imageContents, registryDigest } from "./helpers/inspect.ts";
import { dispatch, layer, makeJob } from "./helpers/jobs.ts";

const harness = useBuildHarness({ base: "busybox", config: { logFlushMs: 200 } });

describe("a chain of layers in one buildah session", () => {
  it("publishes every layer's own image, keeps each layer's secrets to its steps, and charges log lines to their layer", async () => {
    const { orchestrator, registry } = harness;
    const before = storageImages();
    const seen = (name: string) => `$([ -n "\${${name}:-}" ] && echo yes || echo no)`;
    const layers = [
      layer(0, "root", [`FROM ${harness.baseRef}`, "RUN echo zero > /zero"], registry.host),
      layer(1, "one", ["FROM base", `RUN echo "a=${seen("TOKEN_A")}" > /one`], registry.host, { secrets: ["alpha"] }),
      layer(2, "two", ["FROM base", "ENV STAGE=two", `RUN echo "a=${seen("TOKEN_A")} b=${seen("TOKEN_B")}" > /two`], registry.host, {
        secrets: ["beta"],
      }),
    ];
    const job = makeJob({
      orchestrator,
      registryHost: registry.host,
      layers,
      secrets: { alpha: { TOKEN_A: "alpha-value-1234" }, beta: { TOKEN_B: "beta-value-5678" } },
    });
    expect((await dispatch(harness.runner.url, job, harness.secret)).status).toBe(202);
    expect(await orchestrator.final()).toMatchObject({ type: "succeeded" });
    expect(orchestrator.problems).toEqual([]);

    const done = orchestrator.ofType("layer_succeeded");
    expect(done.map((e) => e.layerKey)).toEqual(layers.map((l) => l.key));
    for (const [i, event] of done.entries()) expect(event.digest).toBe(await registryDigest(layers[i]!.target));

    // Each image is the one before it plus its own steps, and nothing of the steps after it.
    const files = await Promise.all(layers.map(async (l) => (await imageContents(l.target)).files));
    expect(files[0]!.get("/zero")?.data.toString()).toBe("zero\n");
    expect(files[0]!.has("/one")).toBe(false);
    expect(files[1]!.get("/one")?.data.toString()).toBe("a=yes\n");
    expect(files[1]!.has("/two")).toBe(false);
    expect(files[2]!.get("/two")?.data.toString()).toBe("a=no b=yes\n");
    const configs = await Promise.all(
      layers.map(async (l) => (await imageConfig(l.target)).json as { config?: { Env?: string[] }; rootfs: { diff_ids: string[] } }),
    );
    expect(configs[1]!.config?.Env ?? []).not.toContain("STAGE=two");
    expect(configs[2]!.config?.Env).toContain("STAGE=two");
    for (const i of [1, 2])
      expect(configs[i]!.rootfs.diff_ids.slice(0, configs[i - 1]!.rootfs.diff_ids.length)).toEqual(configs[i - 1]!.rootfs.diff_ids);

    // Steps are numbered across the chain; each step's lines are in its own layer's log.
    const logOf = (key: string) => orchestrator.logText((e) => e.layerKey === key);
    expect(logOf(layers[0]!.key)).toContain("STEP 2/5: RUN echo zero");
    expect(logOf(layers[1]!.key)).toContain("STEP 3/5: RUN");
    expect(logOf(layers[2]!.key)).toContain("STEP 4/5: ENV STAGE=two");
    expect(logOf(layers[1]!.key)).not.toContain("STEP 4/5");
    expect(logOf(layers[0]!.key)).toContain("building layers 1-3/3 in one buildah session");
    expect(orchestrator.logText()).not.toContain("alpha-value-1234");

    // The tags named the step images; removing them after the job took the step images too.
    await waitForIdle();
    expect(storageImages()).toEqual(before);
  }, 300_000);
});

async function waitForIdle(): Promise<void> {
  for (let i = 0; i < 200 && harness.runner.jobs.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
}

/** Every image id in the runner's storage, intermediate ones included. */
function storageImages(): string[] {
  const { root, runRoot } = harness.storage;
  const out = execFileSync(
    "buildah",
    ["--root", root, "--runroot", runRoot, "--storage-driver", "vfs", "images", "--all", "--quiet", "--no-trunc"],
    { encoding: "utf8" },
  );
  return out.split("\n").filter(Boolean).sort();
}
