// POST /v1/images and GET /v1/images/:id through the Worker's own fetch: validation, recomputed
// keys, the one-statement cached resolve, Idempotency-Key, secret and context checks, what the
// dispatched job carries, tags, runtime mounts and workspace isolation.
import { env, listDurableObjectIds, SELF } from "cloudflare:test";
import { computeChainKeys } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { clearResolvedChains } from "../../workers/images/resolved-chains.ts";
import { uploadTestContext } from "./context-helpers.ts";
import {
  api,
  apiJson,
  chain,
  completeJob,
  dispatches,
  layer,
  newFleet,
  newTenant,
  nthJob,
  ORIGIN,
  settle,
  submitImage,
} from "./helpers.ts";

async function builtChain(n = 3) {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  const layers = chain(n);
  const first = await submitImage(t.token, layers);
  await settle(first.body.buildId);
  const [d] = await dispatches(fleet, 1);
  await completeJob(fleet, d!.job);
  return { t, fleet, layers, first, job: d!.job };
}

describe("POST /v1/images validation", () => {
  it("refuses malformed specs, unknown fields and bad chains with 400 in the one error shape", async () => {
    const { token } = await newTenant();
    const good = chain(2);
    const cases: unknown[] = [
      { builderVersion: "2025.06", layers: good, extra: true },
      { builderVersion: "2025.06", layers: [{ ...good[0], key: "f".repeat(64) }] },
      { builderVersion: "2025.06", layers: [good[0], { ...good[1], dockerfileCommands: ["FROM alpine"] }] },
      { builderVersion: "2025.06", layers: [] },
      { builderVersion: "1999.01", layers: good },
      { builderVersion: "2025.06", layers: good, timeoutSeconds: 10 * 86_400 },
      { builderVersion: "2025.06", layers: [{ ...good[0], secrets: "db" }] },
    ];
    for (const json of cases) {
      const r = await apiJson("POST", "/v1/images", { token, json });
      expect(r.status, JSON.stringify(json).slice(0, 80)).toBe(400);
      expect(r.body.error).toMatchObject({ code: "invalid_request", message: expect.any(String) });
    }
    const notJson = await SELF.fetch(`${ORIGIN}/v1/images`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{nope",
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as any).error.code).toBe("invalid_request");
  });

  it("refuses bodies over 16 MiB with 413, missing tokens with 401, missing scopes with 403", async () => {
    const { token } = await newTenant(["images:read"]);
    const big = await api("POST", "/v1/images", {
      token: (await newTenant()).token,
      json: { builderVersion: "2025.06", layers: [layer([`RUN ${"x".repeat(17 * 1024 * 1024)}`], {}, true)] },
    });
    expect(big.status).toBe(413);
    expect((await apiJson("POST", "/v1/images", { json: { builderVersion: "2025.06", layers: chain(1) } })).status).toBe(401);
    const forbidden = await apiJson("POST", "/v1/images", { token, json: { builderVersion: "2025.06", layers: chain(1) } });
    expect(forbidden.status).toBe(403);
    const writer = await newTenant(["images:write", "images:read"]);
    expect((await submitImage(writer.token, chain(1), { tag: "main" })).status).toBe(403);
  });
});

describe("POST /v1/images answers", () => {
  it("answers at once with the image id, the overall and per-layer status, keys recomputed by the Worker", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId);
    const layers = chain(3);
    const r = await submitImage(t.token, layers);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({
      id: expect.stringMatching(/^im-[a-z2-7]{26}$/),
      status: "queued",
      buildId: expect.stringMatching(/^bd-/),
    });
    const keys = await computeChainKeys({ builderVersion: "2025.06", layers });
    expect(r.body.layers).toEqual(keys.map((key, index) => ({ index, key, status: "queued" })));
  });

  it("answers a fully cached chain from one D1 read, without any Durable Object, and a repeat from memory", async () => {
    const { t, layers, job } = await builtChain(3);
    const before = (await listDurableObjectIds(env.LAYER_BUILD)).length + (await listDurableObjectIds(env.BUILD)).length;
    // The first cached resolve also writes the chain's content-addressed image row.
    const first = await submitImage(t.token, layers);
    expect(first.headers.get("server-timing")).toContain('d1-handler;desc="queries=2"');
    // The isolate remembers the answer (resolved-chains.ts): a repeat runs no statement.
    const repeat = await submitImage(t.token, layers);
    expect(repeat.headers.get("server-timing")).toContain('d1-handler;desc="queries=0"');
    expect(repeat.body).toEqual(first.body);
    // In an isolate that has not answered it (here: forgotten), one read.
    clearResolvedChains();
    const again = await submitImage(t.token, layers);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: first.body.id, status: "succeeded", buildId: null });
    expect(again.body.layers.every((l: { status: string }) => l.status === "succeeded")).toBe(true);
    // Final and complete: every layer's registry result, the same as the image's view, so the SDK asks nothing more.
    const fullView = await apiJson("GET", `/v1/images/${again.body.id}`, { token: t.token });
    const fromView = fullView.body.layers.map(({ index, key, status, cached, digest, reference, sizeBytes, buildId }: any) => ({
      index,
      key,
      status,
      cached,
      digest,
      reference,
      sizeBytes,
      buildId,
    }));
    expect(again.body.layers).toEqual(fromView);
    expect(repeat.body.layers).toEqual(fromView);
    expect(again.headers.get("server-timing")).toContain('d1-handler;desc="queries=1"');
    expect((await listDurableObjectIds(env.LAYER_BUILD)).length + (await listDurableObjectIds(env.BUILD)).length).toBe(before);
    const mounted = await submitImage(t.token, layers, { runtimeMounts: [{ kind: "file", remotePath: "/etc/app.toml", context: null }] });
    expect(mounted.body.id).not.toBe(first.body.id);
    const view = await apiJson("GET", `/v1/images/${again.body.id}`, { token: t.token });
    expect(view.status).toBe(200);
    expect(view.body.layers.map((l: any) => [l.cached, l.reference])).toEqual(
      job.layers.map((_l) => [true, expect.stringMatching(new RegExp(`^kiln\\.test/${t.workspaceName}/layers@sha256:`))]),
    );
  });

  it("never answers forceBuild or ignoreCache from memory, and still moves the tag on a remembered chain", async () => {
    const { t, layers } = await builtChain(2);
    const { body: cached } = await submitImage(t.token, layers);
    const tagged = await submitImage(t.token, layers, { tag: "prod" });
    // Remembered: the only statement is the tag's upsert.
    expect(tagged.headers.get("server-timing")).toContain('d1-handler;desc="queries=1"');
    expect((await apiJson("GET", "/v1/tags/prod", { token: t.token })).body).toMatchObject({ imageId: cached.id });
    expect((await submitImage(t.token, layers, { forceBuild: true })).status).toBe(202);
    expect((await submitImage(t.token, layers, { ignoreCache: true })).status).toBe(202);
  });

  it("dispatches with the submitting request's x-request-id, so one id traces the build", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const r = await submitImage(t.token, chain(2), {}, { "x-request-id": "trace-build-7" });
    await settle(r.body.buildId);
    const [d] = await dispatches(fleet, 1);
    expect(d!.headers["x-request-id"]).toBe("trace-build-7");
  });

  it("builds only the uncached suffix, on top of the cached layer's pinned reference", async () => {
    const { t, fleet, layers } = await builtChain(2);
    const longer = [...layers, layer(["RUN echo three"]), layer(["RUN echo four"])];
    const r = await submitImage(t.token, longer);
    expect(r.status).toBe(202);
    expect(r.body.layers.map((l: { status: string }) => l.status)).toEqual(["succeeded", "succeeded", "queued", "queued"]);
    await settle(r.body.buildId);
    const [, second] = await dispatches(fleet, 2);
    const view = await apiJson("GET", `/v1/images/${r.body.id}`, { token: t.token });
    expect(second!.job.layers.map((l) => l.index)).toEqual([2, 3]);
    expect(second!.job.parentReference).toBe(view.body.layers[1].reference);
  });

  it("answers a cached chain submitted with an Idempotency-Key with its content-addressed image, then from memory", async () => {
    const { t, layers } = await builtChain(2);
    clearResolvedChains();
    const first = await submitImage(t.token, layers, {}, { "idempotency-key": "sdk-1" });
    expect(first.status).toBe(200);
    // The next build() (a new key) is answered from memory: no statement, not even for the key.
    const next = await submitImage(t.token, layers, {}, { "idempotency-key": "sdk-2" });
    expect(next.body).toEqual(first.body);
    expect(next.headers.get("server-timing")).toContain('d1-handler;desc="queries=0"');
    // A retry in an isolate that has not answered it replays the image the key was moved to.
    clearResolvedChains();
    const retry = await submitImage(t.token, layers, {}, { "idempotency-key": "sdk-1" });
    expect(retry.body).toEqual(first.body);
    const plain = await submitImage(t.token, layers);
    expect(plain.body.id).toBe(first.body.id);
  });

  it("replays an Idempotency-Key with the same body and refuses it with another", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId);
    const layers = chain(2);
    const a = await submitImage(t.token, layers, {}, { "idempotency-key": "retry-1" });
    const b = await submitImage(t.token, layers, {}, { "idempotency-key": "retry-1" });
    expect(a.status).toBe(202);
    expect(b.body).toEqual(a.body);
    const other = await submitImage(t.token, chain(2), {}, { "idempotency-key": "retry-1" });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe("idempotency_key_reused");
    const c = await submitImage(t.token, layers, {}, { "idempotency-key": "retry-2" });
    expect(c.body.id).not.toBe(a.body.id);
    expect(c.body.buildId).toBe(a.body.buildId);
  });

  it("checks secrets, required keys and uploaded contexts, naming what is missing", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId);
    const missingSecret = await submitImage(t.token, [layer(["RUN env"], { secrets: ["db"] }, true)]);
    expect(missingSecret.status).toBe(422);
    expect(missingSecret.body.error).toMatchObject({ code: "secret_not_found", details: { secret: "db" } });
    expect((await apiJson("PUT", "/v1/secrets/db", { token: t.token, json: { values: { USER: "u" } } })).status).toBe(200);
    const missingKey = await submitImage(t.token, [layer(["RUN env"], { secrets: ["db"] }, true)], {
      requiredSecretKeys: { db: ["USER", "PASSWORD"] },
    });
    expect(missingKey.status).toBe(422);
    expect(missingKey.body.error).toMatchObject({ code: "secret_missing_keys", details: { missingKeys: ["PASSWORD"] } });
    const digest = `sha256:${"e".repeat(64)}`;
    const missingContext = await submitImage(t.token, [layer(["COPY . /app"], { context: { digest, sizeBytes: 3 } }, true)]);
    expect(missingContext.status).toBe(422);
    expect(missingContext.body.error).toMatchObject({ code: "context_not_found", details: { missing: [digest] } });
  });

  it("dispatches only the declared secrets and context URLs the job token can download", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId, { trustedWithSecrets: true });
    await apiJson("PUT", "/v1/secrets/db", { token: t.token, json: { values: { PASSWORD: "hunter2" } } });
    await apiJson("PUT", "/v1/secrets/unrelated", { token: t.token, json: { values: { TOKEN: "nope" } } });
    const context = await uploadTestContext(t.token, { "app.txt": "context bytes" });
    const { digest, sizeBytes } = context;
    const r = await submitImage(t.token, [layer(["COPY . /app"], { context: { digest, sizeBytes }, secrets: ["db"] }, true)]);
    expect(r.status).toBe(202);
    await settle(r.body.buildId);
    const job = await nthJob(fleet, 1);
    expect(job.secrets).toEqual({ db: { PASSWORD: "hunter2" } });
    expect(job.layers[0]!.context!.url).toBe(`${ORIGIN}/v1/runner/contexts/${digest}`);
    const download = await SELF.fetch(job.layers[0]!.context!.url, { headers: { authorization: `Bearer ${job.callback.downloadToken}` } });
    expect(download.status).toBe(200);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(context.manifestBytes);
    // The same token downloads the manifest's blobs (and only its workspace's).
    const blob = await SELF.fetch(`${ORIGIN}/v1/runner/contexts/${[...context.blobs.keys()][0]}`, {
      headers: { authorization: `Bearer ${job.callback.downloadToken}` },
    });
    expect(await blob.text()).toBe("context bytes");
    expect(job.registry.credentials.username).toBe("kiln-job");
    expect(job.registry.credentials.password).toBe(job.callback.downloadToken);
  });

  it("points a tag at the image, stores runtime mounts, and hides images from other workspaces", async () => {
    const t = await newTenant();
    await newFleet(t.workspaceId);
    const mounts = [{ kind: "dir", remotePath: "/app", context: null }];
    const r = await submitImage(t.token, chain(1), { tag: "latest", runtimeMounts: mounts });
    const tag = await apiJson("GET", "/v1/tags/latest", { token: t.token });
    expect(tag.body.imageId).toBe(r.body.id);
    const view = await apiJson("GET", `/v1/images/${r.body.id}`, { token: t.token });
    expect(view.body.runtimeMounts).toEqual(mounts);
    const other = await newTenant();
    expect((await apiJson("GET", `/v1/images/${r.body.id}`, { token: other.token })).status).toBe(404);
    expect((await apiJson("GET", `/v1/builds/${r.body.buildId}`, { token: other.token })).status).toBe(404);
    expect((await apiJson("GET", "/v1/images/im-unknown", { token: t.token })).body.error.code).toBe("not_found");
  });
});
