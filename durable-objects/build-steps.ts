/**
 * The Build object's two outbound steps, run from its alarm: taking a fleet slot, and
 * dispatching an attempt. Each persists what it is about to do first, and re-reads the state
 * after every outbound call (other events interleave there) before acting on the answer.
 */

import { JobSchema } from "@kiln-build/protocol";
import { jobTokenScope, storeJobTokenScope } from "../workers/auth/job-scope.ts";
import { hashToken } from "../workers/auth/tokens.ts";
import { dispatchJob } from "../workers/dispatch.ts";
import {
  type Fleet,
  findFleet,
  fleetSigningSecret,
  fleetsForSecrets,
  listDispatchableFleets,
  secretsNeedTrustedFleetMessage,
} from "../workers/fleets.ts";
import { secretValuesForJob } from "../workers/secrets/store.ts";
import { newJobToken, recordAttempt } from "./build-d1.ts";
import type { BuildLogs } from "./build-logs.ts";
import { isAttemptLive, type MachineEvent } from "./build-machine.ts";
import { type BuildPushStore, jobPush, pushSecretNames } from "./build-push.ts";
import type { BuildLayer } from "./build-spec.ts";
import type { BuildStore } from "./build-store.ts";
import type { BuildTimeline } from "./build-timeline-store.ts";
import { candidateFleets, noFleetMessage } from "./fleet-choice.ts";
import { composeJob, declaredSecrets } from "./job.ts";
import { RETRY_POLICY } from "./retry-policy.ts";
import { newId, type Timers } from "./storage.ts";

/** What the steps may touch: the object's storage and its two state-changing helpers. */
export type StepContext = {
  env: Env;
  store: BuildStore;
  logs: BuildLogs;
  timers: Timers;
  pushes: BuildPushStore;
  timeline: BuildTimeline;
  apply: (event: MachineEvent) => boolean;
  takeSlot: (fleetId: string) => void;
};

// A queued build re-asks its fleets this often, in case a grant notification was lost.
const SLOT_POLL_MS = 30_000;
// A slot outlives the attempt's deadline by this much before the fleet reclaims it on its own.
const SLOT_SLACK_MS = 15 * 60_000;

/** The layers still to build (claimed, not yet reported built), in chain order. */
export function layersToBuild(store: BuildStore): BuildLayer[] {
  return store
    .layers()
    .filter((l) => l.state === "claimed")
    .map((l) => store.layerSpec(l.index));
}

/**
 * Asks the qualifying fleets for a slot: a free one anywhere first, else a place in every queue.
 * A build whose layers use secrets qualifies only fleets trusted with secrets.
 */
export async function runSlotAcquisition(ctx: StepContext): Promise<void> {
  const rec = ctx.store.load()!;
  if (rec.slotFleet !== null) return;
  const enabled = await listDispatchableFleets(ctx.env, rec.workspaceId);
  const layers = layersToBuild(ctx.store);
  // Push logins are secrets too: only fleets trusted with secrets may push with them.
  const secretNames = [...new Set([...declaredSecrets(layers), ...pushSecretNames(ctx.pushes.load())])].sort();
  const fleets = fleetsForSecrets(enabled, secretNames);
  const todo = layers.map((l) => ({ gpu: l.spec.gpu, platform: l.spec.platform }));
  const candidates = candidateFleets(
    fleets,
    todo,
    ctx.store.attempts().map((a) => a.fleetId),
  );
  if (!still(ctx)) return;
  if (candidates.length === 0) {
    const untrusted = enabled.length > 0 && fleets.length === 0;
    ctx.apply({ type: "no_fleet", message: untrusted ? secretsNeedTrustedFleetMessage(secretNames) : noFleetMessage(fleets, todo) });
    return;
  }
  const slotTtlMs = rec.timeoutMs + SLOT_SLACK_MS;
  for (const enqueue of [false, true]) {
    for (const fleet of candidates) {
      const answer = await ctx.env.FLEET_SCHEDULER.getByName(fleet.id).acquire(fleet.id, rec.id, {
        capacity: fleet.maxConcurrentBuilds,
        enqueue,
        slotTtlMs,
      });
      if (!still(ctx)) {
        // Granted elsewhere (or cancelled) meanwhile: hand this one back.
        if (answer.granted || answer.position !== null) ctx.store.enqueue("release_slot", { fleetId: fleet.id });
        return;
      }
      if (answer.granted) {
        ctx.takeSlot(fleet.id);
        return;
      }
      if (answer.position !== null) ctx.store.setQueuedAt(fleet.id, true);
    }
  }
  ctx.logs.system(0, `all ${candidates.length} qualifying fleet(s) are busy; queued`, Date.now());
  ctx.timers.set("slot", Date.now() + SLOT_POLL_MS);
}

// Still queued and without a slot.
function still(ctx: StepContext): boolean {
  const rec = ctx.store.load()!;
  return rec.machine.status === "queued" && rec.slotFleet === null;
}

/** Dispatches the current attempt to the fleet whose slot the build holds. */
export async function runDispatch(ctx: StepContext): Promise<void> {
  const rec = ctx.store.load()!;
  const attemptNo = rec.machine.attemptNo;
  const fleetId = rec.slotFleet;
  if (fleetId === null) {
    ctx.apply({ type: "attempt_failed", failure: "infra", message: "The build lost its fleet slot before dispatch." });
    return;
  }
  const now = Date.now();
  const attempt = ctx.store.ensureAttempt(attemptNo, newId("at"), fleetId, now + rec.timeoutMs);
  if (attempt.dispatchedMs !== null) return;
  // A watchdog in case this object dies mid-dispatch: the attempt then counts as lost and is retried.
  ctx.timers.set("lease", now + RETRY_POLICY.dispatchTimeoutMs + 5_000);
  // A fresh token per dispatch run: only its hash is stored, so a replayed run cannot reuse the last one.
  const token = newJobToken();
  const tokenHash = await hashToken(token);
  ctx.store.addTokenHash(attemptNo, tokenHash);
  await recordAttempt(ctx.env, {
    workspaceId: rec.workspaceId,
    buildId: rec.id,
    attemptId: attempt.attemptId,
    attemptNo,
    fleetId,
    tokenHash,
    tokenExpiresMs: attempt.deadlineMs + SLOT_SLACK_MS,
  });
  const fleet = await findFleet(ctx.env, fleetId);
  if (!current(ctx, attemptNo)) return;
  if (!fleet || fleet.disabledAt) {
    ctx.apply({ type: "attempt_failed", failure: "refused", message: `Fleet ${fleetId} was removed or disabled before dispatch.` });
    return;
  }
  const todo = layersToBuild(ctx.store);
  const secrets = await jobSecrets(ctx, attemptNo, fleet, todo);
  if (secrets === null) return;
  const signingSecret = await fleetSigningSecret(ctx.env, fleet);
  if (!current(ctx, attemptNo)) return;
  const layers = ctx.store.layers();
  const first = todo[0];
  const below = first ? layers.find((l) => l.index === first.index - 1) : undefined;
  const push = ctx.pushes.load();
  // A job that builds nothing pushes the image as cached: its top layer, pinned by digest
  // (or the index of a multi-platform image, whose push names its own source).
  const source = push?.source ?? (first ? null : (layers.at(-1)?.reference ?? null));
  const job = JobSchema.parse(
    composeJob({
      buildId: rec.id,
      workspaceId: rec.workspaceId,
      workspaceName: rec.workspaceName,
      origin: rec.origin,
      mode: rec.mode,
      builderVersion: rec.builderVersion,
      attemptId: attempt.attemptId,
      fencingToken: attemptNo,
      parentReference: below?.reference ?? rec.parentReference,
      layers: todo,
      secrets,
      token,
      deadlineMs: attempt.deadlineMs,
      ...(push ? { push: jobPush(push, source) } : {}),
    }),
  );
  // Before the token leaves: it pushes only this job's layers and pulls only what its chain names.
  await storeJobTokenScope(ctx.env, tokenHash, jobTokenScope(job));
  if (!current(ctx, attemptNo)) return;
  const pushing = push ? ` and ${push.targets.length} push target(s)` : "";
  ctx.logs.system(attemptNo, `attempt ${attemptNo}: dispatching ${todo.length} layer(s)${pushing} to fleet '${fleet.name}'`, Date.now());
  const result = await dispatchJob(fleet.url, signingSecret, job, { requestId: rec.requestId });
  if (!current(ctx, attemptNo)) return;
  if (result.ok) {
    ctx.store.markAttempt(attemptNo, "dispatched_ms", Date.now());
    ctx.apply({ type: "dispatched" });
  } else if (result.error.code === "protocol_unsupported") {
    // The runner and this orchestrator speak different protocol versions: an operator has to
    // upgrade one of them, which retrying cannot do. Fail now, with the runner's how-to-fix.
    const message = `Fleet '${fleet.name}' refused the job: ${result.error.message}`;
    ctx.logs.system(attemptNo, message, Date.now());
    ctx.apply({ type: "unrecoverable", message });
  } else {
    ctx.apply({ type: "attempt_failed", failure: "refused", message: result.error.message });
  }
}

/**
 * The secret values the job's layers declare, or null when the attempt ended here: the fleet is
 * not (or no longer) trusted with secrets, or a secret cannot be read.
 */
async function jobSecrets(
  ctx: StepContext,
  attemptNo: number,
  fleet: Fleet,
  todo: BuildLayer[],
): Promise<Record<string, Record<string, string>> | null> {
  const names = [...new Set([...declaredSecrets(todo), ...pushSecretNames(ctx.pushes.load())])].sort();
  if (fleetsForSecrets([fleet], names).length === 0) {
    // Untrusted since its slot was granted: retried on a trusted fleet, or failed naming the fix.
    ctx.apply({ type: "attempt_failed", failure: "refused", message: `Fleet '${fleet.name}' is not trusted with secrets.` });
    return null;
  }
  try {
    return await secretValuesForJob(ctx.env, ctx.store.load()!.workspaceId, names);
  } catch (error) {
    // The message names the missing secret, never a value.
    if (current(ctx, attemptNo))
      ctx.apply({ type: "unrecoverable", message: `The build's secrets could not be read: ${(error as Error).message}` });
    return null;
  }
}

// The attempt is still the one being dispatched (or already running after an early event).
function current(ctx: StepContext, attemptNo: number): boolean {
  const m = ctx.store.load()!.machine;
  return m.attemptNo === attemptNo && isAttemptLive(m.status);
}
