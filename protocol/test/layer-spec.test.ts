import { describe, expect, it } from "vitest";
import { computeChainKeys, computeLayerKey, ImageSpecSchema, type LayerSpec, LayerSpecSchema } from "../src/layer-spec.ts";

const base: LayerSpec = {
  dockerfileCommands: ["FROM python:3.12.10-slim-bookworm", "RUN apt-get update"],
  context: null,
  secrets: [],
  gpu: null,
  buildArgs: {},
  registryAuth: null,
  buildFunction: null,
  pythonStandalone: null,
  forceBuild: false,
};
const child: LayerSpec = { ...base, dockerfileCommands: ["FROM base", "RUN echo hi"] };
const digest = `sha256:${"a".repeat(64)}`;

describe("computeLayerKey", () => {
  // Cross-checked independently: sha256 of Python's json.dumps(input, sort_keys=True,
  // separators=(",", ":")), which equals RFC 8785 output for this ASCII-only input.
  it("is stable across machines and runs (golden value)", async () => {
    expect(await computeLayerKey(base, "2025.06", null)).toBe("aa17777561efb3c9b3a6c1a188cf450f1ae5f7b493055c1672f66e960624f9cf");
  });

  it("ignores property order, forceBuild and the registry secret's name", async () => {
    const reordered = Object.fromEntries(Object.entries(base).reverse()) as LayerSpec;
    const key = await computeLayerKey(base, "2025.06", null);
    expect(await computeLayerKey(reordered, "2025.06", null)).toBe(key);
    expect(await computeLayerKey({ ...base, forceBuild: true }, "2025.06", null)).toBe(key);
    const a = await computeLayerKey({ ...base, registryAuth: { kind: "static", secret: "one" } }, "2025.06", null);
    const b = await computeLayerKey({ ...base, registryAuth: { kind: "static", secret: "two" } }, "2025.06", null);
    expect(a).toBe(b);
  });

  it.each<[string, Partial<LayerSpec> | "builder" | "parent"]>([
    ["a Dockerfile line", { dockerfileCommands: ["FROM python:3.12.10-slim-bookworm", "RUN apt-get update "] }],
    ["the context digest", { context: { digest, sizeBytes: 1 } }],
    ["a secret name", { secrets: ["gh"] }],
    ["the GPU", { gpu: { type: "T4", count: 1 } }],
    ["the GPU count", { gpu: { type: "T4", count: 2 } }],
    ["a build arg", { buildArgs: { V: "1" } }],
    ["the registry auth kind", { registryAuth: { kind: "aws", secret: "x" } }],
    [
      "the build function",
      {
        buildFunction: {
          language: "javascript",
          name: "f",
          source: "function f(){}",
          args: [],
          kwargs: {},
          globals: {},
          timeoutSeconds: 60,
        },
      },
    ],
    ["python-build-standalone", { pythonStandalone: { series: "3.12", release: "20240107", version: "3.12.1", libc: "gnu" } }],
    ["builder", "builder"],
    ["parent", "parent"],
  ])("changes when %s changes", async (_, change) => {
    const key = await computeLayerKey(base, "2025.06", null);
    const other =
      change === "builder"
        ? await computeLayerKey(base, "PREVIEW", null)
        : change === "parent"
          ? await computeLayerKey(base, "2025.06", "0".repeat(64))
          : await computeLayerKey({ ...base, ...change }, "2025.06", null);
    expect(other).not.toBe(key);
  });

  it("ignores a build function's timeout", async () => {
    const fn = { language: "javascript" as const, name: "f", source: "function f(){}", args: [], kwargs: {}, globals: {} };
    const a = await computeLayerKey({ ...base, buildFunction: { ...fn, timeoutSeconds: 60 } }, "2025.06", null);
    const b = await computeLayerKey({ ...base, buildFunction: { ...fn, timeoutSeconds: 600 } }, "2025.06", null);
    expect(a).toBe(b);
  });

  it("chains keys through parents", async () => {
    const keys = await computeChainKeys({ builderVersion: "2025.06", layers: [base, child] });
    expect(keys[0]).toBe(await computeLayerKey(base, "2025.06", null));
    expect(keys[1]).toBe(await computeLayerKey(child, "2025.06", keys[0]!));
  });
});

describe("LayerSpecSchema / ImageSpecSchema", () => {
  it("accepts a valid chain", () => {
    expect(ImageSpecSchema.safeParse({ builderVersion: "2025.06", layers: [base, child] }).success).toBe(true);
  });

  it.each<[string, unknown]>([
    ["unknown fields", { ...base, extra: 1 }],
    ["a malformed digest", { ...base, context: { digest: "sha256:xyz", sizeBytes: 1 } }],
    ["an empty line list", { ...base, dockerfileCommands: [] }],
    ["a bad build-arg name", { ...base, buildArgs: { "1x": "v" } }],
    ["a zero GPU count", { ...base, gpu: { type: "T4", count: 0 } }],
  ])("rejects %s", (_, layer) => {
    expect(LayerSpecSchema.safeParse(layer).success).toBe(false);
  });

  it("requires every derived layer to start with FROM base", () => {
    const result = ImageSpecSchema.safeParse({ builderVersion: "2025.06", layers: [base, { ...child, dockerfileCommands: ["FROM x"] }] });
    expect(result.success).toBe(false);
    expect(ImageSpecSchema.safeParse({ builderVersion: "2099.01", layers: [base] }).success).toBe(false);
  });
});
