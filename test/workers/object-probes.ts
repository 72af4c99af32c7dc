// Test probes into the Durable Objects: their state read straight from their SQLite storage
// inside the object (runInDurableObject), and a Build's due timers run as its alarm runs them,
// so the production classes carry no test-only RPC methods.
import { runInDurableObject } from "cloudflare:test";
import type { Build } from "../../durable-objects/build.ts";
import { type AttemptRow, type BuildRecord, BuildStore, type LayerRow } from "../../durable-objects/build-store.ts";
import type { FleetScheduler } from "../../durable-objects/fleet-scheduler.ts";
import type { KeyState } from "../../durable-objects/join-policy.ts";
import { type LayerBuild, loadKeyState } from "../../durable-objects/layer-build.ts";

/** Everything a Build object holds. */
export type BuildSnapshot = {
  build: BuildRecord;
  layers: LayerRow[];
  attempts: AttemptRow[];
  timers: Record<string, number>;
  outbox: number;
};

/** A Build object's state, or null when it holds no build. */
export function buildSnapshot(stub: DurableObjectStub<Build>): Promise<BuildSnapshot | null> {
  return runInDurableObject(stub, (_instance, state) => readBuild(state.storage.sql));
}

/** Runs every timer of a Build already due (what its alarm does, whether or not the alarm is set), then returns its state. */
export function settleBuild(stub: DurableObjectStub<Build>): Promise<BuildSnapshot | null> {
  return runInDurableObject(stub, async (instance, state) => {
    await instance.alarm();
    return readBuild(state.storage.sql);
  });
}

/** A FleetScheduler's capacity, slots (in grant order) and queue. */
export function fleetSnapshot(stub: DurableObjectStub<FleetScheduler>): Promise<{ capacity: number; slots: string[]; queue: string[] }> {
  return runInDurableObject(stub, (_instance, state) => {
    const sql = state.storage.sql;
    const capacity = sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = 'capacity'").toArray()[0]?.value ?? "0";
    return {
      capacity: Number(capacity),
      slots: buildIds(sql, "SELECT build_id FROM slots ORDER BY granted_ms, build_id"),
      queue: buildIds(sql, "SELECT build_id FROM queue ORDER BY seq"),
    };
  });
}

/** A LayerBuild's coordination state, the builds waiting for its key and those still to be woken. */
export function layerBuildSnapshot(stub: DurableObjectStub<LayerBuild>): Promise<KeyState & { waiters: string[]; notifying: string[] }> {
  return runInDurableObject(stub, (_instance, state) => {
    const sql = state.storage.sql;
    return {
      ...loadKeyState(sql),
      waiters: buildIds(sql, "SELECT build_id FROM waiters ORDER BY build_id"),
      notifying: buildIds(sql, "SELECT build_id FROM notify ORDER BY build_id"),
    };
  });
}

function readBuild(sql: SqlStorage): BuildSnapshot | null {
  const store = new BuildStore(sql);
  const build = store.load();
  if (!build) return null;
  const timers = Object.fromEntries(
    sql
      .exec<{ name: string; due_ms: number }>("SELECT name, due_ms FROM timers")
      .toArray()
      .map((t) => [t.name, t.due_ms]),
  );
  return { build, layers: store.layers(), attempts: store.attempts(), timers, outbox: store.outbox().length };
}

function buildIds(sql: SqlStorage, query: string): string[] {
  return sql
    .exec<{ build_id: string }>(query)
    .toArray()
    .map((r) => r.build_id);
}
