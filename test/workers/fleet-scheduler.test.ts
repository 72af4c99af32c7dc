// FleetScheduler: a fleet's capacity and FIFO wait queue, through its RPC and through real
// builds: a full fleet queues builds in order and a finished build's slot goes to the next.
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { chain, completeJob, dispatches, makeDue, newFleet, newTenant, nthJob, settle, submitImage } from "./helpers.ts";
import { fleetSnapshot } from "./object-probes.ts";

const ttl = { slotTtlMs: 3_600_000 };

describe("FleetScheduler", () => {
  it("grants up to capacity, queues in order, and is idempotent per build", async () => {
    const fleet = env.FLEET_SCHEDULER.getByName("fl-unit-1");
    expect(await fleet.acquire("fl-unit-1", "bd-a", { capacity: 1, enqueue: true, ...ttl })).toEqual({ granted: true });
    expect(await fleet.acquire("fl-unit-1", "bd-a", { capacity: 1, enqueue: true, ...ttl })).toEqual({ granted: true });
    expect(await fleet.acquire("fl-unit-1", "bd-b", { capacity: 1, enqueue: false, ...ttl })).toEqual({ granted: false, position: null });
    expect(await fleet.acquire("fl-unit-1", "bd-b", { capacity: 1, enqueue: true, ...ttl })).toEqual({ granted: false, position: 0 });
    expect(await fleet.acquire("fl-unit-1", "bd-c", { capacity: 1, enqueue: true, ...ttl })).toEqual({ granted: false, position: 1 });
    expect(await fleetSnapshot(fleet)).toEqual({ capacity: 1, slots: ["bd-a"], queue: ["bd-b", "bd-c"] });
    // bd-b and bd-c are not builds: they decline the slot, which moves on and stays free.
    await fleet.release("bd-a");
    expect(await fleetSnapshot(fleet)).toEqual({ capacity: 1, slots: [], queue: [] });
  });

  it("reclaims a slot whose build never released it once it expires", async () => {
    const fleet = env.FLEET_SCHEDULER.getByName("fl-unit-2");
    await fleet.acquire("fl-unit-2", "bd-lost", { capacity: 1, enqueue: true, slotTtlMs: 60_000 });
    await fleet.acquire("fl-unit-2", "bd-next", { capacity: 1, enqueue: true, slotTtlMs: 60_000 });
    // Time does not pass in workerd: expire the slot by hand, then let the alarm run.
    await runInDurableObject(
      fleet,
      (_i: unknown, state: DurableObjectState) => void state.storage.sql.exec("UPDATE slots SET expires_ms = 0"),
    );
    await makeDue(fleet, "expire");
    expect(await runDurableObjectAlarm(fleet)).toBe(true);
    // The slot went to the queue's head; bd-next is no build, so it declined and the slot is free again.
    expect(await fleetSnapshot(fleet)).toEqual({ capacity: 1, slots: [], queue: [] });
  });

  it("queues builds when the fleet is full and hands the slot to the next in order", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId, { maxConcurrentBuilds: 1 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = (await submitImage(t.token, chain(1))).body.buildId as string;
      await settle(id);
      ids.push(id);
    }
    const [a, b, c] = ids;
    const scheduler = env.FLEET_SCHEDULER.getByName(fleet.id);
    expect(await fleetSnapshot(scheduler)).toEqual({ capacity: 1, slots: [a], queue: [b, c] });
    expect((await settle(b!)).build.machine.status).toBe("queued");
    await completeJob(fleet, await nthJob(fleet, 1));
    expect((await fleetSnapshot(scheduler)).slots).toEqual([b]);
    await settle(b!);
    expect((await nthJob(fleet, 2)).jobId).toBe(b);
    expect((await settle(c!)).build.machine.status).toBe("queued");
    expect(await dispatches(fleet, 2)).toHaveLength(2);
  });
});
