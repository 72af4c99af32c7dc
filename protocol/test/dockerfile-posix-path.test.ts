import { describe, expect, it } from "vitest";
import { cleanPath, joinPath } from "../src/dockerfile/posix-path.ts";

// Expected values are Go's path.Clean / path.Join results.
describe("cleanPath matches Go's path.Clean", () => {
  it.each([
    ["", "."],
    [".", "."],
    ["./", "."],
    ["a/./b", "a/b"],
    ["a//b/", "a/b"],
    ["a/../..", ".."],
    ["../a/../b", "../b"],
    ["/..", "/"],
    ["/../a/..", "/"],
    ["//a/b/../c", "/a/c"],
    ["src/**/*.go", "src/**/*.go"],
  ])("%j -> %j", (input, expected) => {
    expect(cleanPath(input)).toBe(expected);
  });
});

describe("joinPath matches Go's path.Join", () => {
  it.each([
    [["/", "a/b"], "/a/b"],
    [["/", "../../x"], "/x"],
    [["/", ""], "/"],
    [[".", "/a/b"], "a/b"],
    [["", ""], ""],
  ])("%j -> %j", (parts, expected) => {
    expect(joinPath(...parts)).toBe(expected);
  });
});
