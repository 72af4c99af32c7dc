// Kiln tags of multi-platform images (decision 0023, "Tags and pushes"): a tag written with the
// index points its OCI tag at the OCI image index once assembled (the platforms' manifests
// linked with it), tags move between an index and a single image, another workspace's index
// cannot be tagged, deleting an index takes its tags, OCI tags and only-its platform images, and
// the registry GC keeps what an index tag references.
import { env } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { runGc } from "../../durable-objects/layer-cache-gc.ts";
import { registryBlobs, registryManifestRefs, registryRepositoryBlobs } from "../../workers/db/schema/registry.ts";
import { collectLayerManifests } from "../../workers/registry/gc-layers.ts";
import { db, findManifest } from "../../workers/registry/store.ts";
import { apiJson, newTenant } from "./helpers.ts";
import { buildPlatforms, completeIndex, platformTenant, registry, submitIndex } from "./index-support.ts";

const DAY_MS = 86_400_000;

/** Gives every blob the manifests of `repository` name a D1 row and R2 bytes (the fake layer images have none); returns their digests. */
async function materializeBlobs(repository: string): Promise<string[]> {
  const d = drizzle(env.DB);
  const refs = await d
    .select({ digest: registryManifestRefs.child })
    .from(registryManifestRefs)
    .where(and(eq(registryManifestRefs.repository, repository), eq(registryManifestRefs.kind, "blob")))
    .all();
  const digests = [...new Set(refs.map((r) => r.digest))];
  for (const digest of digests) {
    const r2Key = `blobs/sha256/${digest.slice(7)}`;
    await env.REGISTRY.put(r2Key, `bytes of ${digest}`);
    await d.insert(registryBlobs).values({ digest, sizeBytes: 10, r2Key }).onConflictDoNothing();
    await d.insert(registryRepositoryBlobs).values({ repository, digest }).onConflictDoNothing();
  }
  return digests;
}
const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";

describe("tags of multi-platform images", () => {
  it("points the OCI tag at the index once assembled, with both platforms' manifests in the tag's repository", async () => {
    const t = await platformTenant();
    const index = await submitIndex(t, { tag: "multi:v1" });
    expect(index.created.status).toBe(201);
    const id = index.created.body.id as string;
    // Before assembly the tag exists in Kiln but not yet in the registry.
    expect((await apiJson("GET", "/v1/tags/multi:v1", { token: t.token })).body.imageId).toBe(id);
    expect(await findManifest(db(env), `${t.workspaceName}/multi`, "v1")).toBeNull();
    const view = await completeIndex(t, index);
    expect(view.body.status).toBe("succeeded");
    expect(view.body.tags).toEqual([{ name: "multi:v1", reference: `kiln.test/${t.workspaceName}/multi:v1` }]);
    const pulled = await registry(`${t.workspaceName}/multi/manifests/v1`, t.token);
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get("content-type")).toBe(INDEX_TYPE);
    expect(pulled.headers.get("docker-content-digest")).toBe(view.body.digest);
    const body = (await pulled.json()) as { manifests: { digest: string; platform: { architecture: string } }[] };
    expect(body.manifests.map((m) => m.platform.architecture)).toEqual(["amd64", "arm64"]);
    // Each platform's manifest is pullable from the tag's repository (what `--override-arch` resolves to).
    for (const p of view.body.platforms)
      expect((await registry(`${t.workspaceName}/multi/manifests/${p.digest}`, t.token)).status).toBe(200);
    // Another workspace sees neither the tag nor the index.
    const other = await newTenant();
    expect((await apiJson("GET", `/v1/image-indexes/${id}`, { token: other.token })).status).toBe(404);
    expect((await apiJson("PUT", "/v1/tags/x:v1", { token: other.token, json: { imageId: id } })).status).toBe(404);
  });

  it("publishes the OCI tag when the last platform's build ends, without anybody reading the index", async () => {
    const t = await platformTenant();
    const index = await submitIndex(t, { tag: "unread:v1" });
    await buildPlatforms(t, index);
    const published = await findManifest(db(env), `${t.workspaceName}/unread`, "v1");
    expect(published?.mediaType).toBe(INDEX_TYPE);
    const view = await apiJson("GET", `/v1/image-indexes/${index.created.body.id}`, { token: t.token });
    expect(published?.digest).toBe(view.body.digest);
  });

  it("moves a tag from an index to a single-platform image and back", async () => {
    const t = await platformTenant();
    const index = await submitIndex(t);
    const view = await completeIndex(t, index);
    const id = view.body.id as string;
    const put = await apiJson("PUT", "/v1/tags/app:v2", { token: t.token, json: { imageId: id } });
    expect(put.status).toBe(200);
    expect(put.body.imageId).toBe(id);
    expect((await findManifest(db(env), `${t.workspaceName}/app`, "v2"))?.digest).toBe(view.body.digest);
    const arm = view.body.platforms[1];
    expect((await apiJson("PUT", "/v1/tags/app:v2", { token: t.token, json: { imageId: arm.imageId } })).status).toBe(200);
    expect((await findManifest(db(env), `${t.workspaceName}/app`, "v2"))?.digest).toBe(arm.digest);
    expect((await apiJson("PUT", "/v1/tags/app:v2", { token: t.token, json: { imageId: id } })).status).toBe(200);
    const row = await findManifest(db(env), `${t.workspaceName}/app`, "v2");
    expect(row).toMatchObject({ digest: view.body.digest, mediaType: INDEX_TYPE });
    const listed = await apiJson("GET", "/v1/tags", { token: t.token });
    expect(listed.body.tags).toContainEqual(expect.objectContaining({ name: "app:v2", imageId: id }));
    // Tagging a missing index is 404, like a missing image.
    expect((await apiJson("PUT", "/v1/tags/app:v3", { token: t.token, json: { imageId: "ix-nope" } })).status).toBe(404);
  });

  it("needs tags:write to tag an index at submission", async () => {
    const t = await newTenant(["images:read", "images:write"]);
    const r = await apiJson("POST", "/v1/image-indexes", {
      token: t.token,
      json: { images: [{ platform: "linux/amd64", imageId: "im-x" }], tag: "a:v1" },
    });
    expect(r.status).toBe(403);
  });
});

describe("deleting a multi-platform image", () => {
  it("refuses while a platform builds, then removes the index, its tags, OCI tags and the platform images only it names", async () => {
    const t = await platformTenant();
    const index = await submitIndex(t, { tag: "gone:v1" });
    const id = index.created.body.id as string;
    const early = await apiJson("DELETE", `/v1/images/${id}`, { token: t.token });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe("image_building");
    const view = await completeIndex(t, index);
    const [amd, arm] = index.images;
    // The amd64 image is also in another index (it stays); the arm64 one has a tag of its own (it goes with it).
    const other = await apiJson("POST", "/v1/image-indexes", { token: t.token, json: { images: [amd] } });
    expect(other.status).toBe(201);
    expect((await apiJson("PUT", "/v1/tags/arm-only:v1", { token: t.token, json: { imageId: arm!.imageId } })).status).toBe(200);
    expect((await apiJson("DELETE", `/v1/images/${id}`, { token: (await newTenant()).token })).status).toBe(404);
    const deleted = await apiJson("DELETE", `/v1/images/${id}`, { token: t.token });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ id, deleted: true, tags: ["gone:v1"], images: [arm!.imageId] });
    expect((await apiJson("GET", `/v1/image-indexes/${id}`, { token: t.token })).status).toBe(404);
    expect((await apiJson("GET", "/v1/tags/gone:v1", { token: t.token })).status).toBe(404);
    expect((await apiJson("GET", "/v1/tags/arm-only:v1", { token: t.token })).status).toBe(404);
    expect((await apiJson("GET", `/v1/images/${arm!.imageId}`, { token: t.token })).status).toBe(404);
    expect((await apiJson("GET", `/v1/images/${amd!.imageId}`, { token: t.token })).status).toBe(200);
    expect((await apiJson("GET", `/v1/image-indexes/${other.body.id}`, { token: t.token })).body.status).toBe("succeeded");
    const repo = `${t.workspaceName}/gone`;
    expect((await registry(`${repo}/manifests/v1`, t.token)).status).toBe(404);
    expect(await findManifest(db(env), repo, view.body.digest)).toBeNull();
    for (const p of view.body.platforms) expect(await findManifest(db(env), repo, p.digest)).toBeNull();
    expect((await apiJson("DELETE", `/v1/images/${id}`, { token: t.token })).status).toBe(404);
    // With its row gone, the GC may now collect the index manifest of `<ws>/layers`.
    const far = Date.now() + 365 * DAY_MS;
    const collected = await collectLayerManifests(env, { dryRun: true, nowMs: far, cutoffMs: far });
    expect(collected).toContainEqual({ repository: `${t.workspaceName}/layers`, digest: view.body.digest });
  });
});

describe("GC and index tags", () => {
  it("keeps the tagged index and its platforms' manifests pullable after the platform images are deleted", async () => {
    const t = await platformTenant();
    const index = await submitIndex(t, { tag: "kept:v1" });
    const view = await completeIndex(t, index);
    const repo = `${t.workspaceName}/kept`;
    const blobs = await materializeBlobs(repo);
    expect(blobs.length).toBeGreaterThan(4);
    // Deleting each platform image alone is allowed (the index then reads as failed), and the tag stays.
    for (const { imageId } of index.images) expect((await apiJson("DELETE", `/v1/images/${imageId}`, { token: t.token })).status).toBe(200);
    const swept = await runGc(env, { dryRun: false, now: Date.now() + 2 * DAY_MS });
    // The platform images' own `<ws>/layers` manifests went; every blob the tag's manifests name stays.
    expect(swept.layerManifests.filter((m) => m.repository === `${t.workspaceName}/layers`).length).toBeGreaterThan(0);
    for (const digest of blobs) {
      expect(swept.blobs.map((b) => b.digest)).not.toContain(digest);
      const row = await drizzle(env.DB).select().from(registryBlobs).where(eq(registryBlobs.digest, digest)).get();
      expect(row && (await env.REGISTRY.head(row.r2Key))).toBeTruthy();
    }
    const pulled = await registry(`${repo}/manifests/v1`, t.token);
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get("docker-content-digest")).toBe(view.body.digest);
    for (const p of view.body.platforms) expect((await registry(`${repo}/manifests/${p.digest}`, t.token)).status).toBe(200);
    const after = await apiJson("GET", `/v1/image-indexes/${view.body.id}`, { token: t.token });
    expect(after.body.status).toBe("failed");
  });
});
