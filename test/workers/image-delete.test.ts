// `DELETE /v1/images/:id` and the GC after it: the image, its tags and OCI tags go at once;
// after the grace period the GC evicts the layer cache rows no image uses, deletes their
// `<ws>/layers` manifests and the blobs only they named (D1 rows and R2 objects), and keeps
// whatever another image, a tag or a running build still uses.
import { env, SELF } from "cloudflare:test";
import { and, eq, like } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { runGc } from "../../durable-objects/layer-cache-gc.ts";
import { layers } from "../../workers/db/schema/layers.ts";
import { registryBlobs, registryManifestRefs, registryRepositoryBlobs } from "../../workers/db/schema/registry.ts";
import { apiJson, completeJob, layer, newFleet, newTenant, nthJob, ORIGIN, settle, submitImage } from "./helpers.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const basic = (token: string) => `Basic ${btoa(`x:${token}`)}`;
const registry = (path: string, token: string | null, method = "GET") =>
  SELF.fetch(`${ORIGIN}/v2/${path}`, {
    method,
    headers: { ...(token ? { authorization: basic(token) } : {}), accept: "application/vnd.oci.image.manifest.v1+json" },
  });

/** A tenant with a fleet; `build(layers)` runs a chain to success as a runner would. */
async function tenant() {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  let jobs = 0;
  const build = async (chain: ReturnType<typeof layer>[], extra: Record<string, unknown> = {}) => {
    const submitted = await submitImage(t.token, chain, extra);
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    await settle(submitted.body.buildId);
    await completeJob(fleet, await nthJob(fleet, ++jobs));
    const view = await apiJson("GET", `/v1/images/${submitted.body.id}`, { token: t.token });
    expect(view.body.status).toBe("succeeded");
    const built = view.body.layers as { key: string; digest: string }[];
    return { id: submitted.body.id as string, keys: built.map((l) => l.key), digests: built.map((l) => l.digest) };
  };
  return { ...t, fleet, build, nextJob: () => nthJob(fleet, ++jobs) };
}

/** Two chains sharing their base layer: `[base, a]` and `[base, b]`. */
function sharedChains(seed: string) {
  const base = layer([`RUN echo ${seed} base`], {}, true);
  return { a: [base, layer([`RUN echo ${seed} a`])], b: [base, layer([`RUN echo ${seed} b`])] };
}

/**
 * The layer images the test helpers register carry made-up blob digests with no blob rows;
 * give every blob the workspace's manifests name a row, an R2 object and its repository
 * links, as real pushes would, so the sweep has something to reclaim.
 */
async function materializeBlobs(workspaceName: string): Promise<void> {
  const d = drizzle(env.DB);
  const refs = await d
    .select({ repository: registryManifestRefs.repository, digest: registryManifestRefs.child })
    .from(registryManifestRefs)
    .where(and(like(registryManifestRefs.repository, `${workspaceName}/%`), eq(registryManifestRefs.kind, "blob")))
    .all();
  for (const { repository, digest } of refs) {
    const r2Key = `blobs/sha256/${digest.slice(7)}`;
    await env.REGISTRY.put(r2Key, `bytes of ${digest}`);
    await d.insert(registryBlobs).values({ digest, sizeBytes: 10, r2Key }).onConflictDoNothing();
    await d.insert(registryRepositoryBlobs).values({ repository, digest }).onConflictDoNothing();
  }
}

/** The blob digests manifest `digest` of `repository` names. */
async function blobsOf(repository: string, digest: string): Promise<string[]> {
  const rows = await drizzle(env.DB)
    .select({ child: registryManifestRefs.child })
    .from(registryManifestRefs)
    .where(
      and(
        eq(registryManifestRefs.repository, repository),
        eq(registryManifestRefs.manifest, digest),
        eq(registryManifestRefs.kind, "blob"),
      ),
    )
    .all();
  return rows.map((r) => r.child);
}

describe("DELETE /v1/images/:id", () => {
  it("removes the image, its tags and their OCI tags; again or from another workspace is 404", async () => {
    const t = await tenant();
    const { a } = sharedChains(crypto.randomUUID());
    const image = await t.build(a, { tag: "app:v1" });
    await apiJson("PUT", "/v1/tags/app:v1", { token: t.token, json: { imageId: image.id, public: true } });
    expect((await SELF.fetch(`${ORIGIN}/images/${image.id}`)).status).toBe(200);
    expect((await SELF.fetch(`${ORIGIN}/badges/${t.workspaceName}/app:v1.svg`)).status).toBe(200);

    const other = await newTenant();
    expect((await apiJson("DELETE", `/v1/images/${image.id}`, { token: other.token })).status).toBe(404);
    expect((await apiJson("GET", `/v1/images/${image.id}`, { token: t.token })).status).toBe(200);

    const deleted = await apiJson("DELETE", `/v1/images/${image.id}`, { token: t.token });
    expect(deleted).toMatchObject({ status: 200, body: { id: image.id, deleted: true, tags: ["app:v1"] } });
    expect((await apiJson("GET", `/v1/images/${image.id}`, { token: t.token })).status).toBe(404);
    expect((await apiJson("GET", "/v1/tags/app:v1", { token: t.token })).status).toBe(404);
    expect((await registry(`${t.workspaceName}/app/manifests/v1`, t.token)).status).toBe(404);
    // Its manifest left the tag's repository with its last tag there; `<ws>/layers` keeps it until the GC.
    expect((await registry(`${t.workspaceName}/app/manifests/${image.digests[1]}`, t.token)).status).toBe(404);
    expect((await registry(`${t.workspaceName}/layers/manifests/${image.digests[1]}`, t.token)).status).toBe(200);
    expect((await SELF.fetch(`${ORIGIN}/images/${image.id}`)).status).toBe(404);
    expect((await SELF.fetch(`${ORIGIN}/badges/${t.workspaceName}/app:v1.svg`)).status).toBe(404);
    expect((await apiJson("DELETE", `/v1/images/${image.id}`, { token: t.token })).body.error.code).toBe("not_found");
  });

  it("refuses an image whose build is still running (409, naming the build) and needs images:write", async () => {
    const t = await tenant();
    const submitted = await submitImage(t.token, sharedChains(crypto.randomUUID()).a);
    const refused = await apiJson("DELETE", `/v1/images/${submitted.body.id}`, { token: t.token });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "image_building", details: { buildId: submitted.body.buildId } });
    expect(refused.body.error.message).toContain(`kiln cancel ${submitted.body.buildId}`);
    const { token: readOnly } = await newTenant(["images:read"]);
    expect((await apiJson("DELETE", `/v1/images/${submitted.body.id}`, { token: readOnly })).status).toBe(403);
    expect((await apiJson("DELETE", "/v1/images/im-x", { token: null })).status).toBe(401);
    expect((await apiJson("DELETE", `/v1/images/${"x".repeat(65)}`, { token: t.token })).status).toBe(400);
  });
});

describe("GC after an image delete", () => {
  it("reclaims, after the grace period, only the deleted image's own layer and blobs", async () => {
    const t = await tenant();
    const { a, b } = sharedChains(crypto.randomUUID());
    const first = await t.build(a);
    const second = await t.build(b, { tag: "app:v2" });
    expect(second.digests[0]).toBe(first.digests[0]);
    await materializeBlobs(t.workspaceName);
    const layersRepo = `${t.workspaceName}/layers`;
    const sharedBlobs = await blobsOf(layersRepo, first.digests[0]!);
    const firstOnly = (await blobsOf(layersRepo, first.digests[1]!)).filter((x) => !sharedBlobs.includes(x));
    expect(firstOnly.length).toBe(2); // its layer and its config

    expect((await apiJson("DELETE", `/v1/images/${first.id}`, { token: t.token })).status).toBe(200);
    // Within the grace period nothing of it goes.
    const early = await runGc(env, { dryRun: false, now: Date.now() });
    expect(early.layerManifests.filter((m) => m.repository === layersRepo)).toEqual([]);
    expect(early.cacheEntries.filter((e) => e.workspaceId === t.workspaceId)).toEqual([]);

    const later = Date.now() + 2 * DAY_MS;
    const dry = await runGc(env, { dryRun: true, now: later });
    expect(dry.cacheEntries.filter((e) => e.workspaceId === t.workspaceId).map((e) => e.key)).toEqual([first.keys[1]]);
    expect((await registry(`${layersRepo}/manifests/${first.digests[1]}`, t.token)).status).toBe(200);

    const swept = await runGc(env, { dryRun: false, now: later });
    expect(swept.layerManifests).toContainEqual({ repository: layersRepo, digest: first.digests[1] });
    expect(swept.layerManifests.map((m) => m.digest)).not.toContain(first.digests[0]);
    for (const digest of firstOnly) {
      expect(swept.blobs.map((x) => x.digest)).toContain(digest);
      expect(await env.REGISTRY.head(`blobs/sha256/${digest.slice(7)}`)).toBeNull();
      expect(await drizzle(env.DB).select().from(registryBlobs).where(eq(registryBlobs.digest, digest)).get()).toBeUndefined();
      expect((await registry(`${layersRepo}/blobs/${digest}`, t.token, "HEAD")).status).toBe(404);
    }
    expect((await registry(`${layersRepo}/manifests/${first.digests[1]}`, t.token)).status).toBe(404);
    // The other image, its shared base and its tag are whole.
    for (const digest of sharedBlobs) {
      expect(await env.REGISTRY.head(`blobs/sha256/${digest.slice(7)}`)).not.toBeNull();
      expect((await registry(`${layersRepo}/blobs/${digest}`, t.token, "HEAD")).status).toBe(200);
    }
    expect((await registry(`${t.workspaceName}/app/manifests/v2`, t.token)).status).toBe(200);
    expect((await registry(`${layersRepo}/manifests/${second.digests[1]}`, t.token)).status).toBe(200);
    expect((await registry(`${layersRepo}/manifests/${first.digests[0]}`, t.token)).status).toBe(200);
    expect((await apiJson("GET", `/v1/images/${second.id}`, { token: t.token })).body.status).toBe("succeeded");
    // The evicted layer is no longer cached, in D1 or in its LayerBuild: the chain builds again.
    const cacheRows = await drizzle(env.DB).select().from(layers).where(eq(layers.workspaceId, t.workspaceId)).all();
    expect(cacheRows.map((r) => r.digest).sort()).toEqual([first.digests[0], second.digests[1]].sort());
    const again = await submitImage(t.token, a);
    expect(again.status).toBe(202);
    expect(again.body.layers.map((l: { status: string }) => l.status)).toEqual(["succeeded", "queued"]);
  });

  it("keeps a workspace's layers and blobs while one of its builds is pushing", async () => {
    const t = await tenant();
    const { a, b } = sharedChains(crypto.randomUUID());
    const first = await t.build(a);
    await materializeBlobs(t.workspaceName);
    expect((await apiJson("DELETE", `/v1/images/${first.id}`, { token: t.token })).status).toBe(200);
    const running = await submitImage(t.token, b);
    await settle(running.body.buildId);
    const job = await t.nextJob();
    // A build in flight holds a live job token that may push: nothing of its workspace goes, whatever its age.
    const during = await runGc(env, { dryRun: false, now: Date.now() + 1000, graceMs: 0 });
    expect(during.layerManifests.filter((m) => m.repository === `${t.workspaceName}/layers`)).toEqual([]);
    expect((await registry(`${t.workspaceName}/layers/manifests/${first.digests[1]}`, t.token)).status).toBe(200);
    await completeJob(t.fleet, job);
    const view = await apiJson("GET", `/v1/images/${running.body.id}`, { token: t.token });
    expect(view.body.status).toBe("succeeded");
    const after = await runGc(env, { dryRun: false, now: Date.now() + 1000, graceMs: 0 });
    expect(after.layerManifests).toContainEqual({ repository: `${t.workspaceName}/layers`, digest: first.digests[1] });
    expect((await registry(`${t.workspaceName}/layers/manifests/${view.body.layers[1].digest}`, t.token)).status).toBe(200);
    expect((await registry(`${t.workspaceName}/layers/manifests/${first.digests[0]}`, t.token)).status).toBe(200);
  });
});
