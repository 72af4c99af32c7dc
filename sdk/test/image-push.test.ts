/** `build({ push, pushSecret, labels, ... })` (image-push.ts): checked before any network call, and failed pushes raised. */
import { describe, expect, it } from "vitest";
import type { KilnClient } from "../src/client.ts";
import { pushBody, settledPushes } from "../src/image-push.ts";
import { ImagePushError, InvalidError, Secret } from "../src/index.ts";

describe("pushBody", () => {
  it("sends each target with its login secret, labels, annotations, source and revision", () => {
    expect(
      pushBody({
        push: ["ghcr.io/org/app:v1", { reference: "registry.example.com:5000/app:v1", secret: "other" }],
        pushSecret: Secret.fromName("ghcr"),
        labels: { "org.example.team": "builds" },
        revision: "0123abc",
      }),
    ).toEqual({
      push: [
        { reference: "ghcr.io/org/app:v1", secret: "ghcr" },
        { reference: "registry.example.com:5000/app:v1", secret: "other" },
      ],
      labels: { "org.example.team": "builds" },
      annotations: undefined,
      source: undefined,
      revision: "0123abc",
    });
  });

  it.each([
    [{ push: ["ghcr.io/Org/app:v1"] }, /lowercase/],
    [{ push: ["ghcr.io/org/app"] }, /a tag is required/],
    [{ push: [`ghcr.io/org/app@sha256:${"a".repeat(64)}`] }, /a tag is required|not a digest/],
    [{ push: [] }, /1 to 16/],
    [{ labels: { a: "b" } }, /applies to pushed images only/],
    [{ push: ["ghcr.io/o/a:v1"], labels: { "bad key": "x" } }, /labels key/],
    [{ push: ["ghcr.io/o/a:v1"], annotations: { k: "x".repeat(5000) } }, /at most 4096/],
    [{ push: ["ghcr.io/o/a:v1"], pushSecret: Secret.fromDict({ A: "b" }) }, /named secret/],
  ])("refuses %j before any request", (params, message) => {
    expect(() => pushBody(params as never)).toThrow(InvalidError);
    expect(() => pushBody(params as never)).toThrow(message);
  });

  it("sends nothing without push", () => {
    expect(pushBody({})).toEqual({});
  });
});

describe("settledPushes", () => {
  const client = {} as KilnClient;
  it("raises ImagePushError naming each failed target and its registry's message", async () => {
    const pushes = [
      { reference: "ghcr.io/o/a:v1", status: "succeeded" as const, digest: `sha256:${"1".repeat(64)}`, message: null },
      { reference: "r.example/a:v1", status: "failed" as const, digest: null, message: "UNAUTHORIZED: authentication required (HTTP 401)" },
    ];
    const error = await settledPushes(client, { id: "im-1", buildId: "bd-1", pushes }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImagePushError);
    expect((error as ImagePushError).failed).toEqual([pushes[1]]);
    expect((error as Error).message).toContain("r.example/a:v1: UNAUTHORIZED: authentication required");
  });

  it("returns the outcomes when every target succeeded", async () => {
    const pushes = [{ reference: "ghcr.io/o/a:v1", status: "succeeded" as const, digest: `sha256:${"1".repeat(64)}`, message: null }];
    expect(await settledPushes(client, { id: "im-1", buildId: "bd-1", pushes })).toEqual(pushes);
  });
});
