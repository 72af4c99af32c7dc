// Issue "Tenant isolation and trust", item 2, findings 2 and 3, through the real entry points
// (POST /v1/images, signed runner events, the registry's /v2 API): a cached layer whose image
// was deleted from the registry is found when the runner cannot pull it (confirmed in the
// registry's own store), its cache entry is invalidated and it is rebuilt once, automatically;
// a base image the registry does not have is the user's failure (`build`), never retried.
import { runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BUILD_MIGRATIONS } from "../../../durable-objects/build-migrations.ts";
import { migrate } from "../../../durable-objects/storage.ts";
import {
  apiJson,
  buildStub,
  chain,
  dispatchedBuild,
  layer,
  newFleet,
  newTenant,
  nthJob,
  ORIGIN,
  sendEvent,
  settle,
  submitImage,
} from "../../workers/helpers.ts";
import { buildSnapshot } from "../../workers/object-probes.ts";
import { buildHonestly, pushLayerImage, splitReference } from "./registry-fixtures.ts";
import { cacheRow, keyState, logText, pullFailed } from "./trust-helpers.ts";

/** A tenant whose two-layer chain was built and cached; then the registry loses the top layer's image (a DELETE by digest). */
async function cachedThenDeleted() {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  const base = chain(2);
  const first = await submitImage(t.token, base);
  await settle(first.body.buildId);
  const job1 = await nthJob(fleet, 1);
  const digests = await buildHonestly(fleet, job1);
  const [root, parent] = [job1.layers[0]!, job1.layers[1]!];
  await deleteImage(t.token, `${splitReference(parent.target).repo}`, digests.get(parent.key)!);
  // A chain on top of the lost layer: the cache says it is there, so only the new layer is built, on its pinned image.
  const layers = [...base, layer(["RUN echo above the lost layer"])];
  const second = await submitImage(t.token, layers);
  expect(second.status).toBe(202);
  await settle(second.body.buildId);
  const job2 = await nthJob(fleet, 2);
  expect(job2.parentReference).toBe(`kiln.test/${t.workspaceName}/layers@${digests.get(parent.key)}`);
  return { t, fleet, layers, root, parent, digests, job2, firstBuildId: first.body.buildId as string, second };
}

async function deleteImage(token: string, repo: string, digest: string): Promise<void> {
  const response = await SELF.fetch(`${ORIGIN}/v2/${repo}/manifests/${digest}`, {
    method: "DELETE",
    headers: { authorization: `Basic ${btoa(`x:${token}`)}` },
  });
  expect(response.status).toBe(202);
}

describe("a cached layer gone from the registry", () => {
  it("is invalidated and rebuilt once, automatically, when the runner cannot pull it", async () => {
    const { t, fleet, parent, root, digests, job2, second } = await cachedThenDeleted();
    const buildId = second.body.buildId as string;
    const failed = await sendEvent(fleet, job2, pullFailed(job2.parentReference!, job2.layers[0]!.key));
    expect(failed.status).toBe(200);
    // No three infra retries: the lost layer's cache entry is gone at once, and the build goes back to claim it.
    expect(await cacheRow(t.workspaceId, parent.key)).toBeNull();
    expect((await keyState(t.workspaceId, parent.key)).success).toBeNull();
    const s = await settle(buildId);
    expect(s.build.machine).toMatchObject({ status: "running", attemptNo: 2, failure: null });
    expect(s.layers.map((l) => [l.key, l.state])).toEqual([
      [parent.key, "claimed"],
      [job2.layers[0]!.key, "claimed"],
    ]);
    const job3 = await nthJob(fleet, 3);
    expect(job3.layers.map((l) => l.key)).toEqual([parent.key, job2.layers[0]!.key]);
    expect(job3.parentReference).toBe(`kiln.test/${t.workspaceName}/layers@${digests.get(root.key)}`);
    const log = await logText(t.token, buildId);
    expect(log).toContain(
      `cached layer ${parent.key.slice(0, 12)} (${job2.parentReference}) is no longer in the registry: its cache entry was removed and the layer is rebuilt now (once)`,
    );

    const rebuilt = await buildHonestly(fleet, job3);
    expect((await settle(buildId)).build.machine).toMatchObject({ status: "succeeded", attemptNo: 2 });
    expect((await cacheRow(t.workspaceId, parent.key))!.digest).toBe(rebuilt.get(parent.key));
    const view = await apiJson("GET", `/v1/images/${second.body.id}`, { token: t.token });
    expect(view.body.status).toBe("succeeded");
    expect(view.body.layers[1]).toMatchObject({ digest: rebuilt.get(parent.key) });
  });

  it("is found the same way when the runner reports the failed pull as `build` (runner/src/pull-failure.ts)", async () => {
    const { t, fleet, parent, job2, second } = await cachedThenDeleted();
    const reference = job2.parentReference!;
    const message = `could not pull ${reference}: the registry has no such image, or does not show it to this job's credentials (manifest unknown: manifest unknown to registry)`;
    await sendEvent(fleet, job2, { type: "failed", reason: "build", message, layerKey: job2.layers[0]!.key, exitCode: null, logTail: [] });
    expect(await cacheRow(t.workspaceId, parent.key)).toBeNull();
    const s = await settle(second.body.buildId);
    expect(s.build.machine).toMatchObject({ status: "running", attemptNo: 2, failure: null });
    expect((await nthJob(fleet, 3)).layers[0]!.key).toBe(parent.key);
  });

  it("is rebuilt only once: missing again, the build fails at once, asking for a new build, and is not memoised", async () => {
    const { t, fleet, parent, job2, second, layers } = await cachedThenDeleted();
    const buildId = second.body.buildId as string;
    await sendEvent(fleet, job2, pullFailed(job2.parentReference!, job2.layers[0]!.key));
    await settle(buildId);
    const job3 = await nthJob(fleet, 3);
    const pushed = await pushLayerImage(job3, job3.layers[0]!);
    await sendEvent(fleet, job3, { type: "layer_succeeded", layerKey: parent.key, ...pushed, reference: job3.layers[0]!.target });
    // The rebuilt image vanishes too before the layer above it is built.
    await deleteImage(t.token, splitReference(job3.layers[0]!.target).repo, pushed.digest);
    await sendEvent(fleet, job3, {
      type: "failed",
      reason: "infra",
      message: "runner restarted",
      layerKey: null,
      exitCode: null,
      logTail: [],
    });
    const s = await settle(buildId);
    expect(s.build.machine).toMatchObject({ status: "failed", attemptNo: 2, failure: { reason: "infra" } });
    expect(s.build.machine.failure!.message).toBe(
      `The cached layer ${parent.key} (kiln.test/${t.workspaceName}/layers@${pushed.digest}) is no longer in the registry. Its cache entry was removed: build the image again to rebuild it.`,
    );
    expect(s.timers.retry).toBeUndefined();
    expect(await cacheRow(t.workspaceId, parent.key)).toBeNull();
    // The failure is the cache's, not the layers': a new submission builds at once instead of getting the memoised failure.
    const again = await submitImage(t.token, layers);
    expect(again.status).toBe(202);
    expect(again.body.buildId).not.toBe(buildId);
  });

  it("fails at once (not three infra retries) when it cannot be rebuilt here; a new submission rebuilds it", async () => {
    const { t, fleet, parent, job2, second, layers, firstBuildId } = await cachedThenDeleted();
    // The build that made the layer is gone (its storage is deleted 7 days after it ends): its spec is not known here.
    await runInDurableObject(buildStub(firstBuildId), async (_i: unknown, state: DurableObjectState) => {
      await state.storage.deleteAll();
      migrate(state.storage.sql, BUILD_MIGRATIONS);
    });
    await sendEvent(fleet, job2, pullFailed(job2.parentReference!, job2.layers[0]!.key));
    const s = await settle(second.body.buildId);
    expect(s.build.machine).toMatchObject({ status: "failed", attemptNo: 1, failure: { reason: "infra" } });
    expect(s.build.machine.failure!.message).toContain("Its cache entry was removed: build the image again to rebuild it.");
    expect(await cacheRow(t.workspaceId, parent.key)).toBeNull();
    const again = await submitImage(t.token, layers);
    expect(again.status).toBe(202);
    await settle(again.body.buildId);
    const job3 = await nthJob(fleet, 3);
    expect(job3.layers.map((l) => l.key)).toEqual([parent.key, job2.layers[0]!.key]);
  });

  it("rebuilds a layer the build itself found cached when it claimed it", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const base = chain(2);
    const a = await submitImage(t.token, base);
    await settle(a.body.buildId);
    const jobA = await nthJob(fleet, 1);
    // Submitted while the chain's build runs: nothing cached yet, so this build waits for the shared layers.
    const b = await submitImage(t.token, [...base, layer(["RUN echo on top"])]);
    expect((await settle(b.body.buildId)).build.machine.status).toBe("waiting");
    const digests = await buildHonestly(fleet, jobA);
    const claimed = await settle(b.body.buildId);
    expect(claimed.layers.map((l) => l.state)).toEqual(["cached", "cached", "claimed"]);
    const jobB = await nthJob(fleet, 2);
    const parent = jobA.layers[1]!;
    await deleteImage(t.token, splitReference(parent.target).repo, digests.get(parent.key)!);
    await sendEvent(fleet, jobB, pullFailed(jobB.parentReference!, jobB.layers[0]!.key));
    const s = await settle(b.body.buildId);
    expect(s.layers.map((l) => l.state)).toEqual(["cached", "claimed", "claimed"]);
    const jobB2 = await nthJob(fleet, 3);
    expect(jobB2.layers.map((l) => l.key)).toEqual([parent.key, jobB.layers[0]!.key]);
    await buildHonestly(fleet, jobB2);
    expect((await settle(b.body.buildId)).build.machine.status).toBe("succeeded");
  });

  it("keeps a cached layer the registry still holds, whatever the runner says; the attempt is retried", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const base = chain(1);
    const first = await submitImage(t.token, base);
    await settle(first.body.buildId);
    const cachedKey = (await nthJob(fleet, 1)).layers[0]!.key;
    const digests = await buildHonestly(fleet, await nthJob(fleet, 1));
    const second = await submitImage(t.token, [...base, layer(["RUN echo two"])]);
    await settle(second.body.buildId);
    const job = await nthJob(fleet, 2);
    await sendEvent(fleet, job, pullFailed(job.parentReference!, job.layers[0]!.key));
    const s = (await buildSnapshot(buildStub(second.body.buildId)))!;
    expect(s.build.machine).toMatchObject({ status: "retrying", failure: { reason: "infra" } });
    expect((await cacheRow(t.workspaceId, cachedKey))!.digest).toBe(digests.get(cachedKey));
    expect((await keyState(t.workspaceId, cachedKey)).success?.digest).toBe(digests.get(cachedKey));
  });
});

describe("a base image that does not exist", () => {
  it("fails the build as the user's (`build`), naming the image, never retried", async () => {
    const { t, fleet, job, buildId, submitted } = await dispatchedBuild(1);
    const root = job.layers[0]!;
    const line =
      "Error: creating build container: initializing source docker://busybox:1.36: reading manifest 1.36 in docker.io/library/busybox: manifest unknown";
    const r = await sendEvent(fleet, job, {
      type: "failed",
      reason: "infra",
      message: `buildah build exited with 125: ${line}`,
      layerKey: root.key,
      exitCode: null,
      logTail: ["STEP 1/2: FROM busybox:1.36", 'Resolved "busybox" as an alias', line],
    });
    expect(r.status).toBe(200);
    const s = await settle(buildId);
    const message =
      'The base image docker.io/library/busybox:1.36 does not exist (its registry answered "manifest unknown"). Check the image reference (registry, repository and tag) in FROM or COPY --from.';
    expect(s.build.machine).toMatchObject({ status: "failed", attemptNo: 1, failure: { reason: "build", message } });
    expect(s.timers.retry).toBeUndefined();
    const view = await apiJson("GET", `/v1/images/${submitted.body.id}`, { token: t.token });
    expect(view.body.failure).toMatchObject({ reason: "build", message, layerKey: root.key, exitCode: null });
  });

  it("reads BuildKit's report the same way; other infra failures are still retried", async () => {
    const { fleet, job, buildId } = await dispatchedBuild(1);
    await sendEvent(fleet, job, {
      type: "failed",
      reason: "infra",
      message:
        "buildctl build exited with 1: error: failed to solve: failed to resolve source metadata for registry.example.com/team/app:9: registry.example.com/team/app:9: not found",
      layerKey: null,
      exitCode: null,
      logTail: [],
    });
    expect((await settle(buildId)).build.machine).toMatchObject({ status: "failed", failure: { reason: "build" } });
    const other = await dispatchedBuild(1);
    await sendEvent(other.fleet, other.job, {
      type: "failed",
      reason: "infra",
      message:
        "buildah build exited with 125: Error: creating build container: pinging container registry registry.example.com: connection refused",
      layerKey: null,
      exitCode: null,
      logTail: [],
    });
    expect((await settle(other.buildId)).build.machine).toMatchObject({ status: "retrying", failure: { reason: "infra" } });
  });
});
