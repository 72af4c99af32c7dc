// Platforms in the SDK, offline and against a scripted server: names are checked before any
// request; an arm64 chain carries the platform on every layer and has its own keys while the
// default platform's keys do not change; withPlatforms is kept by later builder calls; a
// platform the server's fleets do not offer is refused after one GET /v1/platforms, before
// anything is uploaded or submitted.
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { KilnClient } from "../src/client.ts";
import { InvalidError } from "../src/errors.ts";
import { Image } from "../src/image.ts";
import { checkPlatforms } from "../src/image-platforms.ts";

describe("platform names", () => {
  it("accepts known platforms once each and refuses anything else before a request", () => {
    expect(checkPlatforms(["linux/arm64", "linux/amd64"], "t")).toEqual(["linux/arm64", "linux/amd64"]);
    expect(() => checkPlatforms([], "t")).toThrow(InvalidError);
    expect(() => checkPlatforms(["linux/s390x"], "t")).toThrow(/unknown platform "linux\/s390x"; Kiln builds linux\/amd64, linux\/arm64/);
    expect(() => checkPlatforms(["linux/arm64", "linux/arm64"], "t")).toThrow(/listed twice/);
    expect(() => Image.fromRegistry("busybox:1").withPlatforms("windows/amd64")).toThrow(InvalidError);
  });
});

describe("describe for a platform", () => {
  it("stamps non-default platforms on every layer and keeps default keys", async () => {
    const image = Image.fromRegistry("busybox:1").runCommands("echo hi");
    const plain = await image.describe();
    expect(plain.layers.every((l) => l.platform === undefined)).toBe(true);
    const amd = await image.describe({ platform: "linux/amd64" });
    expect(amd.layers.map((l) => l.key)).toEqual(plain.layers.map((l) => l.key));
    const arm = await image.describe({ platform: "linux/arm64" });
    expect(arm.layers.map((l) => l.platform)).toEqual(["linux/arm64", "linux/arm64"]);
    expect(arm.spec.layers.map((l) => l.platform)).toEqual(["linux/arm64", "linux/arm64"]);
    for (const [i, l] of arm.layers.entries()) expect(l.key).not.toBe(plain.layers[i]!.key);
  });

  it("keeps withPlatforms through later builder calls", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-platforms-"));
    writeFileSync(path.join(dir, "a.txt"), "a");
    const { client, calls } = scripted(["linux/amd64"]);
    const image = Image.fromRegistry("busybox:1").withPlatforms("linux/arm64").runCommands("true").addLocalDir(dir, "/a");
    await expect(image.build({ client, logs: false })).rejects.toThrow(InvalidError);
    expect(calls).toEqual(["GET /v1/platforms"]);
  });
});

function scripted(offered: string[]) {
  const calls: string[] = [];
  const fetch = (async (input: URL | string, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push(`${init?.method ?? "GET"} ${url.pathname}`);
    const body =
      url.pathname === "/v1/platforms"
        ? { default: "linux/amd64", platforms: offered.map((platform) => ({ platform, nativeFleets: 1, emulatingFleets: 0 })) }
        : { error: { code: "not_found", message: "scripted" } };
    return new Response(JSON.stringify(body), {
      status: url.pathname === "/v1/platforms" ? 200 : 404,
      headers: { "content-type": "application/json" },
    });
  }) as typeof globalThis.fetch;
  return { client: new KilnClient({ serverUrl: "http://kiln.test", token: "kiln_api_t", fetch, maxRetries: 0 }), calls };
}

describe("build({ platforms })", () => {
  it("refuses a platform the fleets do not offer before uploading or submitting", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-platforms-"));
    writeFileSync(path.join(dir, "a.txt"), "a");
    const { client, calls } = scripted(["linux/amd64"]);
    const image = Image.fromRegistry("busybox:1").addLocalDir(dir, "/a", { copy: true }).withPlatforms("linux/amd64", "linux/arm64");
    const error = await image.build({ client, logs: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidError);
    expect((error as Error).message).toBe(
      "No runner fleet of this workspace builds linux/arm64. The fleets offer: linux/amd64. Register a fleet that builds it (`kiln fleet add --platform`), or leave the platform out.",
    );
    expect(calls).toEqual(["GET /v1/platforms"]);
    // A single non-default platform is checked the same way; the default needs no check.
    const single = await image.build({ client, logs: false, platforms: ["linux/arm64"] }).catch((e: unknown) => e);
    expect(single).toBeInstanceOf(InvalidError);
    expect(calls).toEqual(["GET /v1/platforms", "GET /v1/platforms"]);
  });

  it("checks the push options of a multi-platform build before any request", async () => {
    const { client, calls } = scripted(["linux/amd64", "linux/arm64"]);
    const image = Image.fromRegistry("busybox:1").runCommands("true");
    const platforms = ["linux/amd64", "linux/arm64"];
    await expect(image.build({ client, logs: false, platforms, tag: "app:v1", labels: { a: "b" } })).rejects.toThrow(
      /`labels` applies to pushed images only/,
    );
    await expect(image.build({ client, logs: false, platforms, push: ["registry.example.com/App:v1"] })).rejects.toThrow(
      /push target "registry.example.com\/App:v1"/,
    );
    expect(calls).toEqual([]);
  });
});

describe("Image.fromName of a tag naming a multi-platform image", () => {
  const index = {
    id: "ix-abc",
    status: "succeeded",
    digest: `sha256:${"a".repeat(64)}`,
    reference: `kiln.test/ws/layers@sha256:${"a".repeat(64)}`,
    platforms: [
      { platform: "linux/amd64", imageId: "im-a", buildId: null, status: "succeeded", digest: "sha256:1", reference: "r1" },
      { platform: "linux/arm64", imageId: "im-b", buildId: null, status: "succeeded", digest: "sha256:2", reference: "r2" },
    ],
    message: null,
    createdAt: "2026-01-01T00:00:00.000Z",
  };
  const answering = (answers: Record<string, unknown>) => {
    const fetch = (async (input: URL | string) => {
      const body = answers[new URL(String(input)).pathname];
      return new Response(JSON.stringify(body ?? { error: { code: "not_found", message: "no" } }), {
        status: body ? 200 : 404,
        headers: { "content-type": "application/json" },
      });
    }) as typeof globalThis.fetch;
    return new KilnClient({ serverUrl: "http://kiln.test", token: "kiln_api_t", fetch, maxRetries: 0 });
  };

  it("loads the index: its id, digest and platforms, extended FROM the index for the same platforms", async () => {
    const client = answering({ "/v1/tags/app%3Av1": { name: "app:v1", imageId: "ix-abc" }, "/v1/image-indexes/ix-abc": index });
    const image = await Image.fromName("app:v1", { client });
    expect(image.imageId).toBe("ix-abc");
    expect(image.digest).toBe(index.digest);
    expect(image.platforms?.map((p) => p.platform)).toEqual(["linux/amd64", "linux/arm64"]);
    const described = await image.runCommands("true").describe();
    expect(described.layers[0]!.dockerfileCommands[0]).toBe(`FROM ${index.reference}`);
  });

  it("refuses an index that is not built, and says a missing one is not found", async () => {
    const client = answering({ "/v1/image-indexes/ix-abc": { ...index, status: "building", digest: null, reference: null } });
    await expect(Image.fromId("ix-abc", { client })).rejects.toThrow(/is building, not built/);
    await expect(Image.fromId("ix-nope", { client })).rejects.toThrow(/Could not find image with ID ix-nope/);
  });
});
