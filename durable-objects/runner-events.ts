/**
 * How a Build object reads one runner event, pure: whether it belongs to the current attempt
 * (fencing), and what it means for the state machine and the build's layers. The object
 * applies the answer; nothing here touches storage.
 */
import type { RunnerEvent } from "../workers/protocol/runner-protocol.ts";
import { isAttemptLive, type MachineEvent, type MachineState } from "./build-machine.ts";
import type { AttemptRow, LayerRow } from "./build-store.ts";
import { pinnedReference } from "./job.ts";

/** Why an event was refused. `stale_attempt`: not the current attempt (or fencing token), or no attempt is out. */
export type EventRefusal = "stale_attempt" | "unknown_layer";

/** What an accepted event asks the object to do. */
export type EventPlan = {
  machine: MachineEvent;
  /** A layer the runner finished: record it, write it to D1, release its key. */
  built?: { index: number; key: string; digest: string; reference: string; sizeBytes: number };
  /** The layer a failure names, memoised as failed when the build ends. */
  failedLayer?: string;
};

/**
 * Checks `event` against the current attempt and plans its effect. `targetOf(key)` is where
 * the layer was told to push; the stored reference is pinned to the reported digest.
 */
export function planRunnerEvent(
  machine: MachineState,
  attempt: AttemptRow | null,
  layers: readonly LayerRow[],
  event: RunnerEvent,
  targetOf: (key: string) => string,
): { ok: true; plan: EventPlan } | { ok: false; error: EventRefusal } {
  if (!attempt || !isAttemptLive(machine.status) || attempt.attemptNo !== machine.attemptNo) return { ok: false, error: "stale_attempt" };
  if (event.attemptId !== attempt.attemptId || event.fencingToken !== attempt.attemptNo) return { ok: false, error: "stale_attempt" };
  switch (event.type) {
    case "accepted":
    case "started":
    case "heartbeat":
    case "log":
      return { ok: true, plan: { machine: { type: "runner_alive" } } };
    case "layer_succeeded": {
      const layer = layers.find((l) => l.key === event.layerKey);
      if (!layer || (layer.state !== "claimed" && layer.state !== "built")) return { ok: false, error: "unknown_layer" };
      if (layer.state === "built") return { ok: true, plan: { machine: { type: "runner_alive" } } };
      const reference = pinnedReference(targetOf(layer.key), event.digest);
      return { ok: true, plan: { machine: { type: "runner_alive" }, built: { index: layer.index, key: layer.key, digest: event.digest, reference, sizeBytes: event.sizeBytes } } };
    }
    case "succeeded":
      return { ok: true, plan: { machine: { type: "runner_succeeded", complete: layers.every((l) => l.state !== "claimed") } } };
    case "failed": {
      const named = event.layerKey !== null && layers.some((l) => l.key === event.layerKey && l.state === "claimed") ? event.layerKey : undefined;
      const firstUnbuilt = layers.find((l) => l.state === "claimed")?.key;
      const message = event.exitCode === null ? event.message : `${event.message} (exit code ${event.exitCode})`;
      const failedLayer = event.reason === "cancelled" ? undefined : (named ?? firstUnbuilt);
      return { ok: true, plan: { machine: { type: "runner_failed", reason: event.reason, message }, ...(failedLayer ? { failedLayer } : {}) } };
    }
  }
}
