// Signed event delivery against a fake orchestrator that verifies every signature: retries
// keep the webhook-id (so a lost response is deduplicated), 409 fences the attempt, other
// 4xx are not retried, and `cancel: true` reaches the job.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventClient } from "../src/event-client.ts";
import { silentLogger } from "../src/logger.ts";
import { FakeOrchestrator } from "./helpers/fake-orchestrator.ts";
import { testSecret } from "./helpers/jobs.ts";

let secret: string;
let fake: FakeOrchestrator;
beforeEach(async () => {
  secret = testSecret();
  fake = await FakeOrchestrator.start(secret);
});
afterEach(async () => {
  await fake.close();
});

function client(extra: Partial<ConstructorParameters<typeof EventClient>[0]> = {}) {
  return new EventClient({
    eventsUrl: fake.eventsUrl,
    secret,
    job: { jobId: "job_1", attemptId: "att_1", fencingToken: 3 },
    logger: silentLogger,
    maxBackoffMs: 50,
    ...extra,
  });
}

describe("EventClient", () => {
  it("sends events signed with the fleet secret and carrying the job identity", async () => {
    expect(await client().deliver({ type: "started" })).toBe("delivered");
    expect(fake.events).toEqual([{ type: "started", jobId: "job_1", attemptId: "att_1", fencingToken: 3 }]);
    expect(fake.problems).toEqual([]);
  });

  it("retries a lost response with the same webhook-id; the orchestrator's duplicate_event counts as delivered", async () => {
    fake.loseResponses = 1;
    expect(
      await client().deliver({
        type: "layer_succeeded",
        layerKey: "a".repeat(64),
        digest: `sha256:${"b".repeat(64)}`,
        sizeBytes: 10,
        reference: "r/x:y",
      }),
    ).toBe("delivered");
    expect(fake.deliveries).toBe(2);
    expect(fake.ofType("layer_succeeded")).toHaveLength(1);
  });

  it("retries 5xx and network errors, and gives up only when told to", async () => {
    fake.failNext = 3;
    expect(await client().deliver({ type: "succeeded" })).toBe("delivered");
    expect(fake.deliveries).toBe(4);
    fake.outage = true;
    const giveUp = AbortSignal.timeout(300);
    expect(await client().deliver({ type: "succeeded" }, giveUp)).toBe("gave_up");
  });

  it("stops at 409: the attempt is fenced and the job told once", async () => {
    fake.staleAttempts.add("att_1");
    let fenced = 0;
    const c = client({ onFenced: () => fenced++ });
    expect(await c.deliver({ type: "heartbeat" })).toBe("fenced");
    expect(await c.deliver({ type: "succeeded" })).toBe("fenced");
    expect(fenced).toBe(1);
    expect(c.fenced).toBe(true);
  });

  it("does not treat other 409 codes as fencing", async () => {
    let fenced = 0;
    fake.failNext = 1;
    fake.failStatus = 409;
    const c = client({ onFenced: () => fenced++ });
    expect(await c.deliver({ type: "started" })).toBe("rejected");
    expect(fenced).toBe(0);
  });

  it("does not retry other 4xx answers", async () => {
    fake.failNext = 1;
    fake.failStatus = 400;
    expect(await client().deliver({ type: "started" })).toBe("rejected");
    expect(fake.deliveries).toBe(1);
  });

  it("passes a cancel request in any response to the job", async () => {
    fake.cancel = true;
    let cancelled = false;
    expect(await client({ onCancel: () => (cancelled = true) }).sendOnce({ type: "heartbeat" })).toBe("delivered");
    expect(cancelled).toBe(true);
  });

  it("refuses to send an event the protocol forbids", async () => {
    await expect(client().deliver({ type: "log", seq: -1, layerKey: null, stream: "stdout", data: "x" })).rejects.toThrow(
      /invalid log event/,
    );
  });
});
