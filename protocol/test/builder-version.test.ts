import { describe, expect, it } from "vitest";
import { envFlag, resolveBuilderVersion } from "../src/builder-version.ts";
import { VersionError } from "../src/errors.ts";

describe("resolveBuilderVersion", () => {
  it("prefers the argument, then KILN_IMAGE_BUILDER_VERSION, then 2025.06", () => {
    expect(resolveBuilderVersion("2024.10", { KILN_IMAGE_BUILDER_VERSION: "2023.12" })).toBe("2024.10");
    expect(resolveBuilderVersion(undefined, { KILN_IMAGE_BUILDER_VERSION: "PREVIEW" })).toBe("PREVIEW");
    expect(resolveBuilderVersion(undefined, {})).toBe("2025.06");
  });

  it("names the supported set, sorted, and where the bad value came from", () => {
    const call = () => resolveBuilderVersion(undefined, { KILN_IMAGE_BUILDER_VERSION: "2099.01" });
    expect(call).toThrow(VersionError);
    expect(call).toThrow(
      "This version of the Kiln SDK supports the following image builder versions: {'2023.12', '2024.04', '2024.10', '2025.06', 'PREVIEW'}.\n\n" +
        "You are using '2099.01' (based on your `KILN_IMAGE_BUILDER_VERSION` environment variable). Please update or remove your local configuration.",
    );
    expect(() => resolveBuilderVersion("nope", {})).toThrow("based on the `builderVersion` argument");
  });
});

describe("envFlag", () => {
  it.each([
    [undefined, false],
    ["", false],
    ["0", false],
    ["false", false],
    ["FALSE", false],
    ["1", true],
    ["true", true],
    ["yes", true],
    ["anything", true],
  ])("%j -> %s", (value, expected) => {
    expect(envFlag(value)).toBe(expected);
  });
});
