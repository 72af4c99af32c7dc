import { describe, expect, it } from "vitest";
import { InvalidError } from "../src/errors.ts";
import { parseGpu } from "../src/gpu.ts";

describe("parseGpu", () => {
  it.each([
    ["any", { type: "ANY", count: 1 }],
    ["T4", { type: "T4", count: 1 }],
    ["t4", { type: "T4", count: 1 }],
    ["A100-80GB:4", { type: "A100-80GB", count: 4 }],
    ["h100:8", { type: "H100", count: 8 }],
  ])("parses %s", (spec, expected) => {
    expect(parseGpu(spec)).toEqual(expected);
  });

  it("treats null and undefined as no GPU", () => {
    expect(parseGpu(null)).toBeNull();
    expect(parseGpu(undefined)).toBeNull();
  });

  it.each([
    ["T4:two", "Invalid GPU count: two. Value must be an integer."],
    ["T4:0", "Invalid GPU count: 0. Value must be at least 1."],
    ["T4:-1", "Invalid GPU count: -1. Value must be an integer."],
    ["Z9000", "Unknown GPU type: 'Z9000'"],
    ["T4:1:2", "Invalid GPU config: 'T4:1:2'"],
    [":2", "Invalid GPU config: ':2'"],
  ])("rejects %s", (spec, message) => {
    expect(() => parseGpu(spec)).toThrow(InvalidError);
    expect(() => parseGpu(spec)).toThrow(message);
  });

  it("rejects non-strings with the reason", () => {
    expect(() => parseGpu(["T4"])).toThrow('Invalid GPU config: ["T4"]. Value must be a string');
  });
});
