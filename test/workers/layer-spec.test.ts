// The Worker recomputes layer keys itself with the SDK's shared module; this proves the module
// loads in workerd unchanged and agrees with Node on the same input.

import { computeLayerKey, ImageSpecSchema, type LayerSpec } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";

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

describe("shared layer spec in workerd", () => {
  it("computes the same golden key as the SDK on Node", async () => {
    expect(await computeLayerKey(base, "2025.06", null)).toBe("aa17777561efb3c9b3a6c1a188cf450f1ae5f7b493055c1672f66e960624f9cf");
  });

  it("validates chains with the same schema", () => {
    expect(ImageSpecSchema.safeParse({ builderVersion: "2025.06", layers: [base] }).success).toBe(true);
    expect(ImageSpecSchema.safeParse({ builderVersion: "2025.06", layers: [{ ...base, secrets: "x" }] }).success).toBe(false);
  });
});
