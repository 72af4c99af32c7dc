/**
 * The Build object's outbox run, after each commit: the queued items are delivered in the
 * order their state changes happened (`build-outbox.ts` does each one), and the run stops at
 * the first failure so none overtakes an earlier one; the "outbox" timer retries it with
 * backoff.
 */
import { log } from "../workers/log.ts";
import type { BuildParts } from "./build-effects.ts";
import { deliverOutboxItem } from "./build-outbox.ts";

// Retries back off exponentially from 1 s up to this.
const MAX_OUTBOX_BACKOFF_MS = 60_000;

/** Delivers the outbox in order, then re-arms the alarm (an "outbox" retry timer when an item failed). */
export async function flushOutbox(env: Env, parts: BuildParts): Promise<void> {
  const { store, timers } = parts;
  for (const item of store.outbox()) {
    const rec = store.load();
    // The object holds no build (any more): no item can be delivered for it, no timer is left to arm.
    if (!rec) return;
    try {
      await deliverOutboxItem(env, rec, item, parts);
      store.settleOutbox(item.id, true);
    } catch (error) {
      store.settleOutbox(item.id, false);
      log("warn", "outbox delivery failed; retrying", { object: "Build", buildId: rec.id, kind: item.kind, error: String(error) });
      timers.set("outbox", Date.now() + Math.min(MAX_OUTBOX_BACKOFF_MS, 1000 * 2 ** item.tries));
      break;
    }
  }
  await timers.arm();
}
