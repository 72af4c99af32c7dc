/**
 * What the Build object's alarm runs: every named timer that is due, each guarded by the
 * status it was set for (alarms are at-least-once and a timer may outlive its reason, so every
 * step is idempotent and re-checks state). Claiming the layers lives here; the slot and
 * dispatch steps are in `build-steps.ts`.
 */
import { log } from "../workers/log.ts";
import { RETENTION_MS, releaseKey } from "./build-effects.ts";
import { isTerminal } from "./build-machine.ts";
import { BUILD_MIGRATIONS } from "./build-migrations.ts";
import { runDispatch, runSlotAcquisition, type StepContext } from "./build-steps.ts";
import { layerBuildName } from "./layer-build.ts";
import { RETRY_POLICY } from "./retry-policy.ts";
import { migrate } from "./storage.ts";

/** What the timers may touch: the steps' context, and the object's storage for the final GC. */
export type TimerContext = StepContext & { storage: DurableObjectStorage };

// Safety net: re-check a claim even if the holder's wake-up call was lost.
const RECLAIM_MS = 60_000;
// Timers made due by other timers run in a next round; this bounds the rounds of one alarm.
const MAX_ROUNDS = 16;
// A timer that threw is retried after this.
const TIMER_RETRY_MS = 10_000;

/** Fires every due timer (and those they make due), clearing each before it runs; a failing one is retried later. */
export async function runDueTimers(ctx: TimerContext): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const due = ctx.timers.due(Date.now());
    if (due.length === 0) break;
    for (const name of due) {
      ctx.timers.clear(name);
      try {
        await fireTimer(ctx, name);
      } catch (error) {
        log("error", "build timer failed; retrying", {
          object: "Build",
          buildId: ctx.store.load()?.id,
          timer: name,
          error: String((error as Error)?.stack ?? error),
        });
        ctx.timers.set(name, Date.now() + TIMER_RETRY_MS);
      }
    }
  }
}

async function fireTimer(ctx: TimerContext, name: string): Promise<void> {
  const rec = ctx.store.load();
  if (!rec) return;
  const status = rec.machine.status;
  switch (name) {
    case "claim":
      if (status === "waiting") await claimLayers(ctx);
      return;
    case "slot":
      if (status === "queued") await runSlotAcquisition(ctx);
      return;
    case "dispatch":
      if (status === "dispatching") await runDispatch(ctx);
      return;
    case "lease":
      ctx.apply({
        type: "attempt_failed",
        failure: "lost",
        message:
          status === "dispatching"
            ? "The dispatch was never answered."
            : `No event from the runner for ${RETRY_POLICY.leaseMs / 1000} s (lost runner).`,
      });
      return;
    case "deadline":
      ctx.apply({ type: "deadline_passed" });
      return;
    case "retry":
      ctx.apply({ type: "retry_due" });
      return;
    case "cancel":
      ctx.apply({ type: "cancel_timeout" });
      return;
    case "outbox":
      // Only wakes the object: the commit after the timers delivers the outbox.
      return;
    case "gc":
      if (isTerminal(status) && ctx.store.outbox().length === 0) {
        await ctx.storage.deleteAll();
        migrate(ctx.storage.sql, BUILD_MIGRATIONS);
      } else {
        ctx.timers.set("gc", Date.now() + RETENTION_MS);
      }
      return;
  }
}

// Claims the pending layers bottom-up until one is busy (then waits), failed, or none is left.
async function claimLayers(ctx: TimerContext): Promise<void> {
  const { store } = ctx;
  for (;;) {
    const rec = store.load()!;
    if (rec.machine.status !== "waiting") return;
    const layers = store.layers();
    const layer = layers.find((l) => l.state === "pending");
    if (!layer) {
      ctx.apply({
        type: "claims_done",
        layersToBuild: layers.filter((l) => l.state === "claimed").length,
        push: ctx.pushes.load() !== null,
      });
      return;
    }
    // Above a layer this build rebuilds, every layer is rebuilt: its parent changes.
    const claimedBelow = layers.some((l) => l.index < layer.index && l.state === "claimed");
    const fresh = rec.mode === "ignore" || layer.index >= rec.freshFrom || claimedBelow;
    const decision = await ctx.env.LAYER_BUILD.getByName(layerBuildName(rec.workspaceId, layer.key)).claim(rec.workspaceId, layer.key, {
      buildId: rec.id,
      mode: rec.mode,
      fresh,
    });
    if (store.load()!.machine.status !== "waiting") {
      // Cancelled while the claim was in flight: give the key back.
      if (decision.kind === "claimed") releaseKey(store, layer.index, layer.key, { kind: "abandoned" });
      return;
    }
    if (decision.kind === "claimed") {
      store.setLayer(layer.index, "claimed");
      store.setField("waiting_key", null);
    } else if (decision.kind === "cached") {
      store.setLayer(layer.index, "cached", decision);
    } else if (decision.kind === "failed") {
      ctx.apply({
        type: "dependency_failed",
        message: `Layer ${layer.key} failed in build ${decision.buildId} moments ago; it is not rebuilt until the failure memo expires.`,
      });
      return;
    } else {
      if (rec.waitingKey !== layer.key) {
        ctx.logs.system(0, `waiting for build ${decision.holder}, which is building layer ${layer.key.slice(0, 12)}`, Date.now());
        ctx.timeline.mark({
          atMs: Date.now(),
          kind: "waiting_on",
          attemptNo: 0,
          fleetId: null,
          layerKey: layer.key,
          note: decision.holder,
        });
      }
      store.setField("waiting_key", layer.key);
      ctx.timers.set("claim", Date.now() + RECLAIM_MS);
      return;
    }
  }
}
