/**
 * How a Build object reads one runner event, pure: whether it belongs to the current attempt
 * (fencing), and what it means for the state machine and the build's layers. The object
 * applies the answer; nothing here touches storage.
 */

import { FAILURE_LOG_TAIL_LINES, type RunnerEvent } from "@kiln-build/protocol";
import { isAttemptLive, type MachineEvent, type MachineState } from "./build-machine.ts";
import type { AttemptRow, FailureDetails, LayerRow } from "./build-store.ts";
import { pinnedReference } from "./job.ts";

/** A stored log-tail line is cut to this many characters (the protocol allows 4,096; the tail is a preview, the log has the rest). */
export const FAILURE_LOG_LINE_CHARS = 2000;

/** Why an event was refused. `stale_attempt`: not the current attempt (or fencing token), or no attempt is out. */
export type EventRefusal = "stale_attempt" | "unknown_layer";

/** What an accepted event asks the object to do. */
export type EventPlan = {
  machine: MachineEvent;
  /** A layer the runner finished: record it, write it to D1, release its key. */
  built?: { index: number; key: string; digest: string; reference: string; sizeBytes: number };
  /**
   * What a `failed` event reported, kept with the failure: the layer it names (memoised as
   * failed when the build ends), a build step's exit code and the last lines of output.
   */
  failure?: FailureDetails;
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
    case "logs":
      return { ok: true, plan: { machine: { type: "runner_alive" } } };
    case "layer_succeeded": {
      const layer = layers.find((l) => l.key === event.layerKey);
      if (!layer || (layer.state !== "claimed" && layer.state !== "built")) return { ok: false, error: "unknown_layer" };
      if (layer.state === "built") return { ok: true, plan: { machine: { type: "runner_alive" } } };
      const reference = pinnedReference(targetOf(layer.key), event.digest);
      return {
        ok: true,
        plan: {
          machine: { type: "runner_alive" },
          built: { index: layer.index, key: layer.key, digest: event.digest, reference, sizeBytes: event.sizeBytes },
        },
      };
    }
    case "succeeded":
      return { ok: true, plan: { machine: { type: "runner_succeeded", complete: layers.every((l) => l.state !== "claimed") } } };
    case "failed": {
      const named =
        event.layerKey !== null && layers.some((l) => l.key === event.layerKey && l.state === "claimed") ? event.layerKey : undefined;
      const firstUnbuilt = layers.find((l) => l.state === "claimed")?.key;
      const message = event.exitCode === null ? event.message : `${event.message} (exit code ${event.exitCode})`;
      const failure: FailureDetails = {
        // A failed step is in the first layer not built yet; another failure names a layer only if the runner did.
        layer: event.reason === "cancelled" ? null : (named ?? (event.reason === "build" ? (firstUnbuilt ?? null) : null)),
        // Only a step's exit code is the build's (workers/images/view.ts shows it as such); another one stays in the message.
        exitCode: event.reason === "build" ? event.exitCode : null,
        logTail: event.logTail.slice(-FAILURE_LOG_TAIL_LINES).map(capLine),
      };
      return { ok: true, plan: { machine: { type: "runner_failed", reason: event.reason, message }, failure } };
    }
  }
}

/** A line cut to `FAILURE_LOG_LINE_CHARS`, ending in "…" when cut (never between the halves of a surrogate pair). */
function capLine(line: string): string {
  if (line.length <= FAILURE_LOG_LINE_CHARS) return line;
  let end = FAILURE_LOG_LINE_CHARS - 1;
  const last = line.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${line.slice(0, end)}…`;
}
