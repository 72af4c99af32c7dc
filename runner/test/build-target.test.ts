// A real buildah build of one stage of a multi-stage Dockerfile (`fromDockerfile(path, { target })`):
// the runner passes `--target`, so the image holds the builder stage's file and the final
// stage (which would fail with exit 7) never runs. Also: a targeted layer never joins a chain,
// and a target the Dockerfile lacks is a `build` failure before buildah starts.

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BuildahBackend } from "../src/backends/buildah.ts";
import type { BuildRequest } from "../src/backends/types.ts";
import { planChains } from "../src/chain-plan.ts";
import { layerStage, stageProblem } from "../src/layer-stage.ts";
import { runProcess } from "../src/process.ts";
import { useBuildHarness } from "./helpers/build-harness.ts";
import { imageContents } from "./helpers/inspect.ts";
import { layer } from "./helpers/jobs.ts";

const harness = useBuildHarness({ base: "busybox" });

function twoStage(base: string): string[] {
  return [
    `FROM ${base} AS builder`,
    "RUN echo built-by-builder > /builder-file",
    `FROM ${base} AS final`,
    "RUN echo built-by-final > /final-file",
    "RUN exit 7",
  ];
}

describe("Dockerfile targets", () => {
  it("builds exactly the named stage with buildah --target", async () => {
    const dir = await mkdtemp(path.join(harness.workDir, "target-"));
    try {
      const contextDir = path.join(dir, "context");
      await mkdir(contextDir);
      const dockerfile = path.join(dir, "Dockerfile");
      await writeFile(dockerfile, `${twoStage(harness.baseRef).join("\n")}\n`);
      const authFile = path.join(dir, "config.json");
      await writeFile(authFile, JSON.stringify({ auths: {} }));
      const staged = layer(0, "target", twoStage(harness.baseRef), harness.registry.host, {});
      const request: BuildRequest = {
        contextDir,
        dockerfile,
        target: staged.target,
        buildArgs: {},
        stage: layerStage({ ...staged, dockerfileTarget: "builder" }) ?? undefined,
        secrets: [],
        stepImages: false,
        gpus: [],
        authFile,
        pullTlsVerify: false,
        targetInsecure: true,
        pull: "missing",
        metadataFile: path.join(dir, "digest"),
      };
      const backend = new BuildahBackend({ root: harness.storage.root, runRoot: harness.storage.runRoot });
      expect(backend.build(request).argv).toEqual(expect.arrayContaining(["--target", "builder"]));
      const built = await runProcess(backend.build(request));
      expect(built.exitCode).toBe(0);
      expect((await runProcess(backend.push(request))).exitCode).toBe(0);
      const { files } = await imageContents(staged.target);
      expect(files.get("/builder-file")?.data.toString()).toBe("built-by-builder\n");
      expect(files.has("/final-file")).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

describe("targets in the runner's planning", () => {
  it("never joins a targeted layer to a chain", () => {
    const root = layer(0, "root", ["FROM busybox", "RUN true"], "r");
    const next = { ...layer(1, "next", ["FROM base", "RUN true"], "r"), dockerfileTarget: "x" };
    expect(planChains([root, layer(1, "plain", ["FROM base", "RUN true"], "r")], { enabled: true })).toEqual([[0, 1]]);
    expect(planChains([root, next], { enabled: true })).toEqual([[0], [1]]);
  });

  it("names a missing stage and the ones there are", () => {
    expect(stageProblem(twoStage("busybox"), "builder")).toBeNull();
    expect(stageProblem(twoStage("busybox"), "BUILDER")).toBeNull();
    expect(stageProblem(twoStage("busybox"), "nope")).toBe(
      'the target stage "nope" is not in the layer\'s Dockerfile (its named stages are: builder, final)',
    );
    expect(layerStage(layer(0, "plain", ["FROM busybox"], "r"))).toBeNull();
  });
});
