// The build state machine, pure: every transition the Build object relies on.
import { describe, expect, it } from "vitest";
import {
  type Effect,
  initialState,
  isTerminal,
  type MachineEvent,
  type MachineState,
  transition,
} from "../../durable-objects/build-machine.ts";
import { RETRY_POLICY } from "../../durable-objects/retry-policy.ts";

const types = (effects: Effect[]) => effects.map((e) => e.type);
function run(events: MachineEvent[], from: MachineState = initialState()): MachineState {
  return events.reduce((s, e) => transition(s, e).state, from);
}
const running = () => run([{ type: "claims_done", layersToBuild: 2 }, { type: "slot_granted" }, { type: "dispatched" }]);

describe("build machine", () => {
  it("goes waiting -> queued -> dispatching -> running -> succeeded", () => {
    let t = transition(initialState(), { type: "claims_done", layersToBuild: 2 });
    expect(t.state.status).toBe("queued");
    expect(types(t.effects)).toEqual(["acquire_slot"]);
    t = transition(t.state, { type: "slot_granted" });
    expect(t.state).toMatchObject({ status: "dispatching", attemptNo: 1 });
    expect(types(t.effects)).toEqual(["dispatch"]);
    t = transition(t.state, { type: "dispatched" });
    expect(t.state.status).toBe("running");
    expect(types(t.effects)).toEqual(["renew_lease"]);
    t = transition(t.state, { type: "runner_succeeded", complete: true });
    expect(t.state).toMatchObject({ status: "succeeded", failure: null });
    expect(types(t.effects)).toEqual(["end_attempt", "finish"]);
  });

  it("succeeds at once when every layer turned out cached", () => {
    const t = transition(initialState(), { type: "claims_done", layersToBuild: 0 });
    expect(t.state.status).toBe("succeeded");
    expect(types(t.effects)).toEqual(["finish"]);
  });

  it("counts a runner event that beats the dispatch answer as running, and the late 202 changes nothing", () => {
    const dispatching = run([{ type: "claims_done", layersToBuild: 1 }, { type: "slot_granted" }]);
    const alive = transition(dispatching, { type: "runner_alive" });
    expect(alive.state.status).toBe("running");
    expect(transition(alive.state, { type: "dispatched" }).changed).toBe(false);
  });

  it("retries lost, refused and infra attempts twice with 10 s doubling backoff, then fails as infra", () => {
    let s = running();
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const t = transition(s, {
        type: "attempt_failed",
        failure: attempt === 1 ? "lost" : attempt === 2 ? "refused" : "infra",
        message: "gone",
      });
      if (attempt < 3) {
        expect(t.state.status).toBe("retrying");
        expect(types(t.effects)).toEqual(["end_attempt", "schedule_retry"]);
        delays.push((t.effects[1] as { delayMs: number }).delayMs);
        s = run([{ type: "retry_due" }, { type: "slot_granted" }, { type: "dispatched" }], t.state);
        expect(s.attemptNo).toBe(attempt + 1);
      } else {
        expect(t.state).toMatchObject({ status: "failed", failure: { reason: "infra" } });
        expect(t.state.failure!.message).toContain("gave up after 3 attempts");
      }
    }
    expect(delays).toEqual([10_000, 20_000]);
  });

  it("never retries a build failure", () => {
    const t = transition(running(), { type: "runner_failed", reason: "build", message: "step exited 1" });
    expect(t.state).toMatchObject({ status: "failed", failure: { reason: "build", message: "step exited 1" } });
    expect(types(t.effects)).toEqual(["end_attempt", "finish"]);
  });

  it("retries an infra failure the runner reports, and a cancel the runner made on its own", () => {
    expect(transition(running(), { type: "runner_failed", reason: "infra", message: "disk full" }).state.status).toBe("retrying");
    expect(transition(running(), { type: "runner_failed", reason: "cancelled", message: "shutting down" }).state.status).toBe("retrying");
  });

  it("ends as timeout on the runner's report or the deadline, without retry", () => {
    expect(transition(running(), { type: "runner_failed", reason: "timeout", message: "deadline" }).state.status).toBe("timeout");
    expect(transition(running(), { type: "deadline_passed" }).state.status).toBe("timeout");
  });

  it("treats a success that misses layers as an attempt failure", () => {
    expect(transition(running(), { type: "runner_succeeded", complete: false }).state.status).toBe("retrying");
  });

  it("cancels at once when no runner has the build", () => {
    for (const s of [initialState(), run([{ type: "claims_done", layersToBuild: 1 }])]) {
      const t = transition(s, { type: "cancel" });
      expect(t.state.status).toBe("cancelled");
      expect(types(t.effects)).toEqual(["finish"]);
    }
  });

  it("asks a running runner to stop, and ends cancelled when it confirms, a lease expires or the grace period ends", () => {
    const asked = transition(running(), { type: "cancel" });
    expect(asked.state).toMatchObject({ status: "running", cancelRequested: true });
    expect(types(asked.effects)).toEqual(["schedule_cancel_timeout"]);
    expect(transition(asked.state, { type: "cancel" }).changed).toBe(false);
    expect(transition(asked.state, { type: "runner_failed", reason: "cancelled", message: "stopped" }).state.status).toBe("cancelled");
    expect(transition(asked.state, { type: "attempt_failed", failure: "lost", message: "no heartbeat" }).state.status).toBe("cancelled");
    expect(transition(asked.state, { type: "cancel_timeout" }).state.status).toBe("cancelled");
  });

  it("fails a build whose dependency failed, or for which no fleet qualifies, without retry", () => {
    expect(transition(initialState(), { type: "dependency_failed", message: "x" }).state).toMatchObject({
      status: "failed",
      failure: { reason: "dependency" },
    });
    const queued = run([{ type: "claims_done", layersToBuild: 1 }]);
    expect(transition(queued, { type: "no_fleet", message: "none" }).state).toMatchObject({
      status: "failed",
      failure: { reason: "infra" },
    });
  });

  it("ignores every event once terminal, and events that do not apply", () => {
    const done = run([{ type: "claims_done", layersToBuild: 0 }]);
    expect(isTerminal(done.status)).toBe(true);
    for (const e of [{ type: "cancel" }, { type: "runner_alive" }, { type: "retry_due" }, { type: "deadline_passed" }] as MachineEvent[]) {
      expect(transition(done, e).changed).toBe(false);
    }
    expect(transition(initialState(), { type: "slot_granted" }).changed).toBe(false);
    expect(transition(initialState(), { type: "runner_succeeded", complete: true }).changed).toBe(false);
  });

  it("uses the policy it is given", () => {
    const strict = { ...RETRY_POLICY, maxAttempts: 1 };
    expect(transition(running(), { type: "attempt_failed", failure: "lost", message: "x" }, strict).state.status).toBe("failed");
  });
});
