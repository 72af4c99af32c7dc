// Multi-platform builds in the orchestrator (decision 0023): the layer key folds in a
// non-default platform only; a chain goes to a fleet that builds its platform (native before
// emulated) and a fleet without arm64 never gets an arm64 job; a platform no fleet offers is
// refused at submission, before any Durable Object; fleets declare platforms through the API;
// an image index has one status and, once every platform succeeded, an OCI index in the registry.
import { env } from "cloudflare:test";
import { computeChainKeys, type Job, type LayerSpec } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { collectLayerManifests } from "../../workers/registry/gc-layers.ts";
import { db, findManifest, manifestObjectKey, recordBlob, storedManifest } from "../../workers/registry/store.ts";
import { api, apiJson, chain, completeJob, dispatches, newFleet, newTenant, nthJob, settle, submitImage } from "./helpers.ts";

const on = (layers: LayerSpec[], platform: "linux/amd64" | "linux/arm64") => layers.map((l) => ({ ...l, platform }));
const EMULATES_ARM: { native: ["linux/amd64"]; emulated: ["linux/arm64"] } = { native: ["linux/amd64"], emulated: ["linux/arm64"] };

describe("layer keys and platforms", () => {
  it("keeps keys of default-platform chains and gives arm64 its own", async () => {
    const layers = chain(2);
    const plain = await computeChainKeys({ builderVersion: "2025.06", layers });
    expect(await computeChainKeys({ builderVersion: "2025.06", layers: on(layers, "linux/amd64") })).toEqual(plain);
    const arm = await computeChainKeys({ builderVersion: "2025.06", layers: on(layers, "linux/arm64") });
    expect(arm[0]).not.toBe(plain[0]);
    expect(arm[1]).not.toBe(plain[1]);
  });

  it("refuses a chain whose layers name different platforms", async () => {
    const t = await newTenant();
    const layers = chain(2);
    const mixed = [{ ...layers[0]!, platform: "linux/arm64" }, layers[1]!];
    const res = await submitImage(t.token, mixed as LayerSpec[]);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain("root layer's platform");
  });
});

describe("fleet choice by platform", () => {
  it("refuses a platform no fleet offers with 422 naming what the fleets offer, before any build", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId);
    const res = await submitImage(t.token, on(chain(2), "linux/arm64"));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("platform_unavailable");
    expect(res.body.error.details).toEqual({ platforms: ["linux/arm64"], offered: ["linux/amd64"] });
    expect(res.body.error.message).toContain("The fleets offer: linux/amd64.");
    const listed = await apiJson("GET", "/v1/platforms", { token: t.token });
    expect(listed.body).toEqual({ default: "linux/amd64", platforms: [{ platform: "linux/amd64", nativeFleets: 1, emulatingFleets: 0 }] });
  });

  it("sends arm64 to the fleet that builds it and never to an amd64-only fleet", async () => {
    const t = await newTenant();
    const amdOnly = await newFleet(t.workspaceId);
    const emulating = await newFleet(t.workspaceId, { platforms: EMULATES_ARM });
    const arm = await submitImage(t.token, on(chain(2), "linux/arm64"));
    expect(arm.status).toBe(202);
    await settle(arm.body.buildId);
    const job = await nthJob(emulating, 1);
    expect(job.layers.map((l) => l.platform)).toEqual(["linux/arm64", "linux/arm64"]);
    // The default platform still goes to the first qualifying fleet, with no platform on the wire.
    const amd = await submitImage(t.token, chain(2));
    await settle(amd.body.buildId);
    const amdJob = await nthJob(amdOnly, 1);
    expect(amdJob.layers.every((l) => l.platform === undefined)).toBe(true);
    expect((await dispatches(amdOnly, 1)).every((d) => d.job.layers.every((l) => l.platform !== "linux/arm64"))).toBe(true);
  });

  it("prefers a fleet building the platform natively over one emulating it", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId, { platforms: EMULATES_ARM });
    const native = await newFleet(t.workspaceId, { platforms: { native: ["linux/arm64"], emulated: [] } });
    const arm = await submitImage(t.token, on(chain(1), "linux/arm64"));
    await settle(arm.body.buildId);
    expect((await nthJob(native, 1)).layers[0]!.platform).toBe("linux/arm64");
  });
});

describe("fleet registration", () => {
  it("stores declared platforms, defaults to linux/amd64 and refuses unknown or contradictory ones", async () => {
    const t = await newTenant();
    const base = { name: "arm", url: "https://runners.example.com/v1/jobs", maxConcurrentBuilds: 2 };
    const plain = await apiJson("POST", "/v1/fleets", { token: t.token, json: base });
    expect(plain.body.platforms).toEqual({ native: ["linux/amd64"], emulated: [] });
    const arm = await apiJson("POST", "/v1/fleets", { token: t.token, json: { ...base, platforms: EMULATES_ARM } });
    expect(arm.status).toBe(201);
    expect(arm.body.platforms).toEqual(EMULATES_ARM);
    const bad = await apiJson("POST", "/v1/fleets", {
      token: t.token,
      json: { ...base, platforms: { native: ["linux/s390x"], emulated: [] } },
    });
    expect(bad.status).toBe(400);
    const both = await apiJson("POST", "/v1/fleets", {
      token: t.token,
      json: { ...base, platforms: { native: ["linux/arm64"], emulated: ["linux/arm64"] } },
    });
    expect(both.status).toBe(400);
    const patched = await apiJson("PATCH", `/v1/fleets/${plain.body.id}`, {
      token: t.token,
      json: { platforms: { native: ["linux/arm64"], emulated: [] } },
    });
    expect(patched.body.platforms).toEqual({ native: ["linux/arm64"], emulated: [] });
  });
});

// The fake layer images of `completeJob` have config blobs the registry does not hold: store one declaring `platform`.
async function declarePlatform(job: Job, workspaceId: string, platform: string): Promise<void> {
  const top = job.layers.at(-1)!;
  const repo = top.target.slice(top.target.indexOf("/") + 1, top.target.lastIndexOf(":"));
  const [os, architecture] = platform.split("/");
  const manifest = await storedManifestOfTag(repo, top.key);
  const configDigest = (JSON.parse(new TextDecoder().decode(manifest)) as { config: { digest: string } }).config.digest;
  const key = `test-config/${configDigest}`;
  await env.REGISTRY.put(key, JSON.stringify({ os, architecture }));
  await recordBlob(db(env), repo, workspaceId, configDigest, 40, key, Date.now());
}

async function storedManifestOfTag(repo: string, tag: string): Promise<Uint8Array> {
  const row = await findManifest(db(env), repo, tag);
  const object = await env.REGISTRY.get(manifestObjectKey(row!.digest));
  return new Uint8Array(await object!.arrayBuffer());
}

describe("image indexes", () => {
  it("has one status while a platform builds, then writes an OCI index of both platforms", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId, { platforms: EMULATES_ARM });
    const seed = chain(2);
    const amd = await submitImage(t.token, seed);
    const arm = await submitImage(t.token, on(seed, "linux/arm64"));
    const images = [
      { platform: "linux/amd64", imageId: amd.body.id },
      { platform: "linux/arm64", imageId: arm.body.id },
    ];
    const created = await apiJson("POST", "/v1/image-indexes", { token: t.token, json: { images } });
    expect(created.status).toBe(201);
    expect(created.body.status).toMatch(/queued|building/);
    expect(created.body.digest).toBeNull();
    for (const [i, s] of [amd, arm].entries()) {
      await settle(s.body.buildId);
      const job = await nthJob(fleet, i + 1);
      await completeJob(fleet, job);
      await declarePlatform(job, t.workspaceId, images.find((e) => e.imageId === s.body.id)!.platform);
    }
    const view = await apiJson("GET", `/v1/image-indexes/${created.body.id}`, { token: t.token });
    expect(view.body.status).toBe("succeeded");
    expect(view.body.message).toBeNull();
    expect(view.body.platforms.map((p: { platform: string; digest: string }) => [p.platform, p.digest !== null])).toEqual([
      ["linux/amd64", true],
      ["linux/arm64", true],
    ]);
    const repo = `${t.workspaceName}/layers`;
    const stored = await storedManifest(env, repo, view.body.digest);
    const index = JSON.parse(new TextDecoder().decode(stored!.bytes));
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.manifests.map((m: { digest: string; platform: unknown }) => [m.digest, m.platform])).toEqual([
      [view.body.platforms[0].digest, { os: "linux", architecture: "amd64" }],
      [view.body.platforms[1].digest, { os: "linux", architecture: "arm64" }],
    ]);
    expect(view.body.reference).toBe(`${view.body.platforms[0].reference.split("@")[0]}@${view.body.digest}`);
    // Reading again answers the recorded digest.
    expect((await apiJson("GET", `/v1/image-indexes/${created.body.id}`, { token: t.token })).body.digest).toBe(view.body.digest);
    // The registry GC keeps the index while its row names it, however old (dry run past every grace period).
    const far = Date.now() + 365 * 86_400_000;
    const collected = await collectLayerManifests(env, { dryRun: true, nowMs: far, cutoffMs: far });
    expect(collected.map((m) => m.digest)).not.toContain(view.body.digest);
    // The public status page of one platform's image lists every platform's digest and the index's.
    expect((await apiJson("PUT", "/v1/tags/multi:v1", { token: t.token, json: { imageId: arm.body.id, public: true } })).status).toBe(200);
    const page = await (await api("GET", `/images/by-tag/${t.workspaceName}/multi:v1`, { token: null })).text();
    expect(page).toContain('<section id="platforms">');
    expect(page).toContain(view.body.digest);
    for (const p of view.body.platforms) expect(page).toContain(p.digest);
    expect(page).toContain("linux/arm64 (this image)");
    expect(page).not.toContain(amd.body.id);
  });

  it("refuses another workspace's images and hides another workspace's index", async () => {
    const a = await newTenant();
    const b = await newTenant();
    await newFleet(a.workspaceId);
    const img = await submitImage(a.token, chain(1));
    const stolen = await apiJson("POST", "/v1/image-indexes", {
      token: b.token,
      json: { images: [{ platform: "linux/amd64", imageId: img.body.id }] },
    });
    expect(stolen.status).toBe(404);
    const own = await apiJson("POST", "/v1/image-indexes", {
      token: a.token,
      json: { images: [{ platform: "linux/amd64", imageId: img.body.id }] },
    });
    expect((await apiJson("GET", `/v1/image-indexes/${own.body.id}`, { token: b.token })).status).toBe(404);
    const twice = await apiJson("POST", "/v1/image-indexes", {
      token: a.token,
      json: {
        images: [
          { platform: "linux/amd64", imageId: img.body.id },
          { platform: "linux/amd64", imageId: img.body.id },
        ],
      },
    });
    expect(twice.status).toBe(400);
  });

  it("refuses to file an image under a platform its config does not declare", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const amd = await submitImage(t.token, chain(1));
    await settle(amd.body.buildId);
    const job = await nthJob(fleet, 1);
    await completeJob(fleet, job);
    await declarePlatform(job, t.workspaceId, "linux/amd64");
    const created = await apiJson("POST", "/v1/image-indexes", {
      token: t.token,
      json: { images: [{ platform: "linux/arm64", imageId: amd.body.id }] },
    });
    expect(created.body.status).toBe("failed");
    expect(created.body.digest).toBeNull();
    expect(created.body.message).toContain("was built for linux/amd64");
  });
});
