// Build coordination across LayerBuild objects: a chain sharing an in-flight prefix waits for it,
// forceBuild never joins a started build (normal submissions may join a forced one), ignoreCache
// builds leave the cache alone, failures are memoised only for the window, and the objects
// resume from storage after eviction.
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { layerBuildName } from "../../durable-objects/layer-build.ts";
import { layers as layersTable } from "../../workers/db/schema/layers.ts";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import {
  apiJson,
  chain,
  completeJob,
  digestFor,
  dispatches,
  layer,
  newFleet,
  newTenant,
  nthJob,
  sendEvent,
  settle,
  submitImage,
} from "./helpers.ts";
import { layerBuildSnapshot } from "./object-probes.ts";

async function setup() {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  return { t, fleet };
}

async function cacheRow(workspaceId: string, key: string) {
  return drizzle(env.DB)
    .select()
    .from(layersTable)
    .where(and(eq(layersTable.workspaceId, workspaceId), eq(layersTable.key, key)))
    .get();
}

describe("shared prefixes", () => {
  it("makes a chain that shares an in-flight prefix wait for it, then builds only its own layer", async () => {
    const { t, fleet } = await setup();
    const base = chain(2);
    const a = await submitImage(t.token, [...base, layer(["RUN echo a"])]);
    await settle(a.body.buildId);
    const jobA = await nthJob(fleet, 1);
    const b = await submitImage(t.token, [...base, layer(["RUN echo b"])]);
    expect(b.body.buildId).not.toBe(a.body.buildId);
    const waiting = await settle(b.body.buildId);
    expect(waiting.build.machine.status).toBe("waiting");
    expect(waiting.build.waitingKey).toBe(jobA.layers[0]!.key);
    // The prefix image itself joins the in-flight build instead of starting one.
    const prefix = await submitImage(t.token, base);
    expect(prefix.body.buildId).toBe(a.body.buildId);

    await completeJob(fleet, jobA);
    await settle(b.body.buildId);
    const jobB = await nthJob(fleet, 2);
    expect(jobB.layers.map((l) => l.index)).toEqual([2]);
    const view = await apiJson("GET", `/v1/images/${prefix.body.id}`, { token: t.token });
    expect(view.body.status).toBe("succeeded");
    expect(jobB.parentReference).toBe(view.body.layers[1].reference);
    expect(await dispatches(fleet, 2)).toHaveLength(2);
  });
});

describe("forceBuild and ignoreCache", () => {
  it("never joins a started build, rebuilds after it and replaces the cache; normal submissions get the cache meanwhile", async () => {
    const { t, fleet } = await setup();
    const layers = chain(2);
    const normal = await submitImage(t.token, layers);
    await settle(normal.body.buildId);
    const first = await nthJob(fleet, 1);
    const forced = await submitImage(t.token, layers, { forceBuild: true });
    expect(forced.body.buildId).not.toBe(normal.body.buildId);
    // A second forced submission coalesces with the forced build that has not started yet.
    const forcedAgain = await submitImage(t.token, layers, { forceBuild: true });
    expect(forcedAgain.body.buildId).toBe(forced.body.buildId);
    expect((await settle(forced.body.buildId)).build.machine.status).toBe("waiting");

    await completeJob(fleet, first, "v1");
    const joiner = await submitImage(t.token, layers);
    expect(joiner.status).toBe(200);
    expect(joiner.body.buildId).toBeNull();
    await settle(forced.body.buildId);
    const rebuild = await nthJob(fleet, 2);
    expect(rebuild.layers.map((l) => l.index)).toEqual([0, 1]);
    // Started now: a new forced submission does not join it.
    const late = await submitImage(t.token, layers, { forceBuild: true });
    expect(late.body.buildId).not.toBe(forced.body.buildId);

    await completeJob(fleet, rebuild, "v2");
    const top = rebuild.layers[1]!.key;
    expect((await cacheRow(t.workspaceId, top))!.digest).toBe(digestFor(top, "v2"));
    const view = await apiJson("GET", `/v1/images/${forced.body.id}`, { token: t.token });
    expect(view.body.layers[1]).toMatchObject({ digest: digestFor(top, "v2"), cached: false });
  });

  it("lets a normal submission join a forced build when nothing is cached", async () => {
    const { t } = await setup();
    const layers = chain(2);
    const forced = await submitImage(t.token, layers, { forceBuild: true });
    const normal = await submitImage(t.token, layers);
    expect(normal.body.buildId).toBe(forced.body.buildId);
  });

  it("rebuilds only from a layer's own forceBuild upwards", async () => {
    const { t, fleet } = await setup();
    const layers = chain(3);
    const r = await submitImage(t.token, layers);
    await settle(r.body.buildId);
    await completeJob(fleet, await nthJob(fleet, 1));
    const partial = await submitImage(
      t.token,
      layers.map((l, i) => (i === 1 ? { ...l, forceBuild: true } : l)),
    );
    expect(partial.status).toBe(202);
    await settle(partial.body.buildId);
    expect((await nthJob(fleet, 2)).layers.map((l) => l.index)).toEqual([1, 2]);
  });

  it("builds ignoreCache submissions privately, without replacing the cached result", async () => {
    const { t, fleet } = await setup();
    const layers = chain(1);
    const r = await submitImage(t.token, layers);
    await settle(r.body.buildId);
    const cachedJob = await nthJob(fleet, 1);
    await completeJob(fleet, cachedJob, "cached");
    const fresh = await submitImage(t.token, layers, { ignoreCache: true });
    expect(fresh.status).toBe(202);
    await settle(fresh.body.buildId);
    const job = await nthJob(fleet, 2);
    const key = job.layers[0]!.key;
    expect(job.layers[0]!.target).toBe(`kiln.test/${t.workspaceName}/layers:${key}-${fresh.body.buildId}`);
    await completeJob(fleet, job, "ignored");
    expect((await cacheRow(t.workspaceId, key))!.digest).toBe(digestFor(key, "cached"));
    const view = await apiJson("GET", `/v1/images/${fresh.body.id}`, { token: t.token });
    expect(view.body).toMatchObject({ status: "succeeded", mode: "ignore" });
    expect(view.body.layers[0]).toMatchObject({ digest: digestFor(key, "ignored"), cached: false });
    expect((await submitImage(t.token, layers)).status).toBe(200);
  });
});

describe("failures", () => {
  it("memoises a failed layer for the window only, and fails chains built on it as a dependency", async () => {
    const { t, fleet } = await setup();
    const layers = chain(2);
    const r = await submitImage(t.token, layers);
    await settle(r.body.buildId);
    const job = await nthJob(fleet, 1);
    const root = job.layers[0]!;
    await registerLayerImage(job, root, digestFor(root.key));
    expect(
      (
        await sendEvent(fleet, job, {
          type: "layer_succeeded",
          layerKey: root.key,
          digest: digestFor(root.key),
          sizeBytes: 1,
          reference: root.target,
        })
      ).status,
    ).toBe(200);
    const failed = await sendEvent(fleet, job, {
      type: "failed",
      reason: "build",
      message: "step 2 exited non-zero",
      layerKey: job.layers[1]!.key,
      exitCode: 2,
      logTail: ["boom"],
    });
    expect(failed.status).toBe(200);
    const view = await apiJson("GET", `/v1/images/${r.body.id}`, { token: t.token });
    expect(view.body).toMatchObject({ status: "failed", failure: { reason: "build", message: "step 2 exited non-zero (exit code 2)" } });

    const again = await submitImage(t.token, layers);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: "failed", buildId: r.body.buildId });
    const above = await submitImage(t.token, [...layers, layer(["RUN echo more"])]);
    const dependent = await settle(above.body.buildId);
    expect(dependent.build.machine).toMatchObject({ status: "failed", failure: { reason: "dependency" } });
    expect(await dispatches(fleet, 1)).toHaveLength(1);

    // Past the window (made due by hand: time does not advance in workerd) it is built again.
    const top = env.LAYER_BUILD.getByName(layerBuildName(t.workspaceId, job.layers[1]!.key));
    await runInDurableObject(
      top,
      (_i: unknown, state: DurableObjectState) => void state.storage.sql.exec("UPDATE outcome SET failed_until_ms = 0"),
    );
    const retried = await submitImage(t.token, layers);
    expect(retried.status).toBe(202);
    expect(retried.body.buildId).not.toBe(r.body.buildId);
  });
});

describe("persistence", () => {
  it("keeps pending builds and holders across eviction", async () => {
    const { t, fleet } = await setup();
    const layers = chain(2);
    const first = await submitImage(t.token, layers);
    const job = (await settle(first.body.buildId)).layers;
    const top = env.LAYER_BUILD.getByName(layerBuildName(t.workspaceId, job[1]!.key));
    await evictDurableObject(top);
    const second = await submitImage(t.token, layers);
    expect(second.body.buildId).toBe(first.body.buildId);
    const snapshot = await layerBuildSnapshot(top);
    expect(snapshot.holder).toEqual({ buildId: first.body.buildId, mode: "normal" });
    await completeJob(fleet, await nthJob(fleet, 1));
    expect((await layerBuildSnapshot(top)).success?.buildId).toBe(first.body.buildId);
  });
});
