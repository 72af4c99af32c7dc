// Issue "Tenant isolation and trust", item 2, finding 1: a correctly signed `layer_succeeded`
// is believed only when the built-in registry holds that manifest in the job's target
// repository and it extends the parent layer's image. A forged or wrong report fails the
// attempt (infra, retried) and never enters the cache: no D1 `layers` row, no LayerBuild
// success, the image is not `succeeded`; an honest retry then caches the real image.
import { describe, expect, it } from "vitest";
import {
  apiJson,
  buildStub,
  chain,
  dispatchedBuild,
  newFleet,
  newTenant,
  nthJob,
  sendEvent,
  settle,
  submitImage,
} from "../../workers/helpers.ts";
import { buildSnapshot } from "../../workers/object-probes.ts";
import { buildHonestly, pushLayerImage } from "./registry-fixtures.ts";
import { cacheRow, fire, keyState, logText } from "./trust-helpers.ts";

const FORGED = `sha256:${"d".repeat(64)}`;

/** A new tenant with a fleet, and a chain of `n` layers submitted and dispatched. */
async function dispatchedChain(n: number) {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  const layers = chain(n);
  const submitted = await submitImage(t.token, layers);
  await settle(submitted.body.buildId);
  return { t, fleet, layers, submitted, job: await nthJob(fleet, 1), buildId: submitted.body.buildId as string };
}

describe("a runner's layer result is checked against the registry", () => {
  it("refuses a signed layer_succeeded whose digest the registry does not hold; nothing is cached", async () => {
    const { t, fleet, job, buildId, submitted, layers } = await dispatchedChain(2);
    const root = job.layers[0]!;
    expect((await sendEvent(fleet, job, { type: "started" })).status).toBe(200);
    const forged = await sendEvent(fleet, job, {
      type: "layer_succeeded",
      layerKey: root.key,
      digest: FORGED,
      sizeBytes: 1,
      reference: root.target,
    });
    // Answered (the event was delivered), and the runner is told to stop: its attempt is over.
    expect(forged).toMatchObject({ status: 200, body: { ok: true, cancel: true } });

    const s = (await buildSnapshot(buildStub(buildId)))!;
    expect(s.build.machine).toMatchObject({ status: "retrying", attemptNo: 1, failure: { reason: "infra" } });
    expect(s.build.machine.failure!.message).toBe(
      `The runner reported layer ${root.key} as ${FORGED}, which is not in the registry (${t.workspaceName}/layers).`,
    );
    expect(s.layers[0]).toMatchObject({ state: "claimed", digest: null, reference: null });
    expect(s.attempts[0]!.endedMs).not.toBeNull();
    await settle(buildId);
    expect(await cacheRow(t.workspaceId, root.key)).toBeNull();
    expect((await keyState(t.workspaceId, root.key)).success).toBeNull();
    expect(await logText(t.token, buildId)).toContain(`layer result refused: The runner reported layer ${root.key} as ${FORGED}`);
    const view = await apiJson("GET", `/v1/images/${submitted.body.id}`, { token: t.token });
    expect(view.body.status).not.toBe("succeeded");
    expect(view.body.layers[0]).toMatchObject({ digest: null });
    // The attempt is over: the forging runner's later events are refused.
    expect((await sendEvent(fleet, job, { type: "succeeded" })).body.error.code).toBe("stale_attempt");

    // The retry, built honestly, is believed: the real digests are cached and served to later submissions.
    await fire(buildId, "retry");
    const job2 = await nthJob(fleet, 2);
    expect(job2.layers.map((l) => l.key)).toEqual(job.layers.map((l) => l.key));
    const digests = await buildHonestly(fleet, job2);
    expect((await settle(buildId)).build.machine.status).toBe("succeeded");
    expect((await cacheRow(t.workspaceId, root.key))!.digest).toBe(digests.get(root.key));
    expect((await keyState(t.workspaceId, root.key)).success?.digest).toBe(digests.get(root.key));
    const again = await submitImage(t.token, layers);
    expect(again.body).toMatchObject({ status: "succeeded" });
    const view2 = await apiJson("GET", `/v1/images/${again.body.id}`, { token: t.token });
    expect(view2.body.layers.map((l: { digest: string }) => l.digest)).toEqual(job.layers.map((l) => digests.get(l.key)));
  });

  it("refuses an image that does not extend its parent layer's image", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(2);
    const [root, top] = [job.layers[0]!, job.layers[1]!];
    const pushedRoot = await pushLayerImage(job, root);
    const ok = await sendEvent(fleet, job, { type: "layer_succeeded", layerKey: root.key, ...pushedRoot, reference: root.target });
    expect(ok).toMatchObject({ status: 200, body: { ok: true, cancel: false } });
    // Pushed to the right tag, but on other layers than the root's: not built on its parent.
    const unrelated = await pushLayerImage(job, top, { parentLayers: [] });
    const refused = await sendEvent(fleet, job, { type: "layer_succeeded", layerKey: top.key, ...unrelated, reference: top.target });
    expect(refused.body.cancel).toBe(true);
    const s = await settle(buildId);
    const rootReference = s.layers[0]!.reference!;
    expect(rootReference).toBe(`kiln.test/${t.workspaceName}/layers@${pushedRoot.digest}`);
    expect(s.build.machine).toMatchObject({ status: "retrying", failure: { reason: "infra" } });
    expect(s.build.machine.failure!.message).toBe(
      `The runner reported layer ${top.key} as ${unrelated.digest}, which does not extend its parent ${rootReference}.`,
    );
    expect(s.layers.map((l) => l.state)).toEqual(["built", "claimed"]);
    expect(await cacheRow(t.workspaceId, top.key)).toBeNull();
    expect((await keyState(t.workspaceId, top.key)).success).toBeNull();
    // The root was checked and kept: the retry builds only the top, on the root's image.
    await fire(buildId, "retry");
    const job2 = await nthJob(fleet, 2);
    expect(job2.parentReference).toBe(rootReference);
    expect(job2.layers.map((l) => l.key)).toEqual([top.key]);
  });

  it("refuses a digest that only another workspace's repository holds", async () => {
    const victim = await dispatchedBuild(1);
    const attacker = await dispatchedBuild(1);
    // A real image, in the attacker's own layers repository.
    const theirs = await pushLayerImage(attacker.job, attacker.job.layers[0]!);
    const root = victim.job.layers[0]!;
    const report = { type: "layer_succeeded", layerKey: root.key, ...theirs, reference: root.target } as const;
    expect((await sendEvent(victim.fleet, victim.job, report)).body.cancel).toBe(true);
    const s = await settle(victim.buildId);
    expect(s.build.machine.failure!.message).toContain(`which is not in the registry (${victim.t.workspaceName}/layers)`);
    expect(await cacheRow(victim.t.workspaceId, root.key)).toBeNull();
  });

  it("refuses a report for a layer whose parent has no result yet", async () => {
    const { fleet, job, buildId } = await dispatchedBuild(2);
    const top = job.layers[1]!;
    const pushed = await pushLayerImage(job, top, { parentLayers: [] });
    await sendEvent(fleet, job, { type: "layer_succeeded", layerKey: top.key, ...pushed, reference: top.target });
    const s = await settle(buildId);
    expect(s.build.machine.failure!.message).toBe(`The runner reported layer ${top.key} before the layer below it.`);
    expect(s.layers.map((l) => l.state)).toEqual(["claimed", "claimed"]);
  });

  it("checks the result of a forced rebuild too, keeping the cached result when refused", async () => {
    const first = await dispatchedChain(1);
    const { t, fleet } = first;
    const cached = await buildHonestly(fleet, first.job);
    const key = first.job.layers[0]!.key;
    const forced = await submitImage(t.token, first.layers, { forceBuild: true });
    await settle(forced.body.buildId);
    const job = await nthJob(fleet, 2);
    await sendEvent(fleet, job, { type: "layer_succeeded", layerKey: key, digest: FORGED, sizeBytes: 1, reference: job.layers[0]!.target });
    expect((await settle(forced.body.buildId)).build.machine.status).toBe("retrying");
    expect((await cacheRow(t.workspaceId, key))!.digest).toBe(cached.get(key));
    expect((await keyState(t.workspaceId, key)).success?.digest).toBe(cached.get(key));
  });
});
