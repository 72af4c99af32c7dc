// Per-file contexts in the Worker (decision 0022): manifests are validated and answer the
// blobs they lack, blob batches are checked against their digests, a submission lists every
// missing manifest and blob, a blob gone from R2 is asked for again, and a workspace can
// never use another workspace's blobs.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { contextDownloadPath, contextKey } from "../../workers/contexts/upload-plan.ts";
import { postBlobs, putManifest, testContext, uploadTestContext } from "./context-helpers.ts";
import { layer, newFleet, newTenant, submitImage } from "./helpers.ts";
import { call, insertJobToken } from "./periphery-helpers.ts";

const rowsOf = async (workspaceId: string, digest: string) =>
  (await env.DB.prepare("SELECT digest FROM context_uploads WHERE workspace_id = ? AND digest = ?").bind(workspaceId, digest).all())
    .results;

const submit = (token: string, context: { digest: string; sizeBytes: number }, seed = crypto.randomUUID()) =>
  submitImage(token, [layer([`COPY . /app # ${seed}`], { context: { digest: context.digest, sizeBytes: context.sizeBytes } }, true)]);

describe("PUT /v1/contexts/manifests/:digest", () => {
  it("stores the manifest and answers the blobs the workspace lacks", async () => {
    const t = await newTenant();
    const context = await testContext({ "a.txt": "alpha", "b.txt": "beta" });
    expect(await putManifest(t.token, context)).toEqual({ status: 201, missing: [...context.blobs.keys()] });
    expect(await postBlobs(t.token, new Map([...context.blobs].slice(0, 1)))).toBe(201);
    expect((await putManifest(t.token, context)).missing).toEqual([...context.blobs.keys()].slice(1));
  });

  it("refuses bytes that are not the digest's, and a manifest that is not valid", async () => {
    const t = await newTenant();
    const context = await testContext({ "a.txt": "alpha" });
    const other = await testContext({ "b.txt": "beta" });
    expect((await putManifest(t.token, { ...context, manifestBytes: other.manifestBytes })).status).toBe(400);
    const bad = new TextEncoder().encode(JSON.stringify({ version: 1, entries: [{ path: "../x", type: "dir", mode: 493 }] }));
    const digest = `sha256:${[...new Uint8Array(await crypto.subtle.digest("SHA-256", bad))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
    const response = await call("PUT", `/v1/contexts/manifests/${digest}`, {
      token: t.token,
      body: bad,
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("invalid_manifest");
  });
});

describe("POST /v1/contexts/blobs", () => {
  it("refuses a blob whose bytes are not its digest's and a malformed batch", async () => {
    const t = await newTenant();
    const context = await testContext({ "a.txt": `never stored ${crypto.randomUUID()}` });
    const [digest] = context.blobs.keys();
    expect(await postBlobs(t.token, new Map([[digest!, new TextEncoder().encode("ALPHA")]]))).toBe(400);
    expect(await env.CONTEXTS.head(contextKey(digest!))).toBeNull();
    const response = await call("POST", "/v1/contexts/blobs", { token: t.token, body: new Uint8Array([0, 0, 0, 9, 1]) });
    expect(response.status).toBe(400);
  });
});

describe("submissions of per-file contexts", () => {
  it("list the missing blobs of a stored manifest, then build once they are there", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId);
    const flat = await testContext({ "a.txt": "alpha", "b.txt": "beta" });
    await putManifest(t.token, flat);
    const first = await submit(t.token, flat);
    expect(first.status).toBe(422);
    expect(first.body.error).toMatchObject({ code: "context_not_found", details: { missing: [...flat.blobs.keys()] } });
    expect(await postBlobs(t.token, flat.blobs)).toBe(201);
    expect((await submit(t.token, flat)).status).toBe(202);
  });

  it("ask again for a blob deleted from R2 once its last check is stale (D1's record is not trusted alone)", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId);
    const context = await uploadTestContext(t.token, { "a.txt": `alpha ${crypto.randomUUID()}`, "b.txt": "beta" });
    const [gone] = context.blobs.keys();
    await env.CONTEXTS.delete(contextKey(gone!));
    await env.DB.prepare("UPDATE context_uploads SET checked_at = 0 WHERE workspace_id = ?").bind(t.workspaceId).run();
    const again = await submit(t.token, context);
    expect(again.status).toBe(422);
    expect(again.body.error.details.missing).toEqual([gone]);
    expect(await rowsOf(t.workspaceId, gone!)).toEqual([]);
    expect(await postBlobs(t.token, new Map([[gone!, context.blobs.get(gone!)!]]))).toBe(201);
    expect((await submit(t.token, context)).status).toBe(202);
  });

  it("forget a blob a runner's download found gone, so the next build uploads it again", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId);
    const context = await uploadTestContext(t.token, { "a.txt": `alpha ${crypto.randomUUID()}` });
    const [gone] = context.blobs.keys();
    await env.CONTEXTS.delete(contextKey(gone!));
    // Checked moments ago: trusted without a head, so the build is dispatched...
    expect((await submit(t.token, context)).status).toBe(202);
    // ...and the runner's download misses it, which deletes the row.
    const jobToken = await insertJobToken(t.workspaceId);
    expect((await call("GET", contextDownloadPath(gone!), { token: jobToken })).status).toBe(404);
    expect(await rowsOf(t.workspaceId, gone!)).toEqual([]);
    const next = await submit(t.token, context);
    expect(next.body.error).toMatchObject({ code: "context_not_found", details: { missing: [gone] } });
    expect(await postBlobs(t.token, context.blobs)).toBe(201);
    expect((await submit(t.token, context)).status).toBe(202);
  });

  it("never let a workspace use another workspace's blobs", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const context = await uploadTestContext(a.token, { "secret.txt": "a's private bytes" });
    // B knows the digests but never sent the bytes: it must upload them itself.
    expect((await putManifest(b.token, context)).missing).toEqual([...context.blobs.keys()]);
    expect((await submit(b.token, context)).body.error.code).toBe("context_not_found");
    const bJob = await insertJobToken(b.workspaceId);
    expect((await call("GET", contextDownloadPath([...context.blobs.keys()][0]!), { token: bJob })).status).toBe(404);
  });
});
