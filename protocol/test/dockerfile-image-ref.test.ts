import { describe, expect, it } from "vitest";
import { imageReferenceProblem } from "../src/dockerfile/image-ref.ts";

describe("imageReferenceProblem applies distribution/reference's grammar", () => {
  it.each([
    "alpine",
    "alpine:3.19",
    "library/alpine",
    "docker.io/library/alpine:latest",
    "ghcr.io/org/app:v1.2.3",
    "localhost:5000/app",
    "my-registry.example.com:443/a/b/c:tag",
    "golang:1.22-alpine",
    `alpine@sha256:${"a".repeat(64)}`,
    "gcr.io/distroless/static-debian12:nonroot",
  ])("accepts %s", (ref) => {
    expect(imageReferenceProblem(ref)).toBeUndefined();
  });

  it.each([
    ["Alpine", /must be lowercase/],
    ["alpine:", /invalid reference format/],
    ["alpine:tag with space", /invalid reference format/],
    ["-alpine", /invalid reference format/],
    ["a".repeat(64), /64-byte hexadecimal/],
    [`alpine@sha256:${"a".repeat(10)}`, /invalid reference format/],
    [`alpine@sha256:${"a".repeat(63)}`, /invalid checksum digest length/],
    [`alpine@md5:${"a".repeat(32)}`, /unsupported digest algorithm/],
  ])("rejects %s", (ref, problem) => {
    expect(imageReferenceProblem(ref)).toMatch(problem);
  });
});
