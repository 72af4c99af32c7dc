// Dedupe under concurrency: 500 concurrent identical submissions give exactly one dispatch and
// all see the same result; a replayed runner event (same webhook-id) changes nothing.
import { describe, expect, it } from "vitest";
import {
  apiJson,
  chain,
  clientAddress,
  completeJob,
  dispatchedBuild,
  dispatches,
  newFleet,
  newTenant,
  newToken,
  sendEvent,
  settle,
  submitImage,
} from "./helpers.ts";

describe("dedupe", () => {
  it("gives 500 concurrent identical submissions exactly one dispatch and one result", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const layers = chain(3);
    // As from a CI farm: many machines, a few tokens of the workspace (the request budgets are per address and per token).
    const tokens = [t.token, ...(await Promise.all(Array.from({ length: 4 }, () => newToken(t.workspaceId))))];
    const answers = await Promise.all(
      Array.from({ length: 500 }, (_, i) => submitImage(tokens[i % tokens.length]!, layers, {}, clientAddress(i))),
    );
    expect(answers.every((a) => a.status === 202)).toBe(true);
    const buildIds = new Set(answers.map((a) => a.body.buildId));
    expect(buildIds.size).toBe(1);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(500);
    const [buildId] = [...buildIds] as [string];
    await settle(buildId);
    const [only] = await dispatches(fleet, 1);
    await completeJob(fleet, only!.job);
    const views = await Promise.all(
      answers.map((a, i) => apiJson("GET", `/v1/images/${a.body.id}`, { token: tokens[i % tokens.length]!, headers: clientAddress(i) })),
    );
    const results = new Set(views.map((v) => JSON.stringify([v.body.status, v.body.layers.map((l: { digest: string }) => l.digest)])));
    expect(results.size).toBe(1);
    expect(views[0]!.body.status).toBe("succeeded");
    // Settling again and waiting on the recorder shows nothing more was ever sent.
    expect((await settle(buildId)).attempts).toHaveLength(1);
    expect(await dispatches(fleet, 1)).toHaveLength(1);
  }, 180_000);

  it("refuses a replayed runner event (same webhook-id) with 409 and changes nothing", async () => {
    const { t, fleet, submitted: r, job } = await dispatchedBuild(1);
    const first = await sendEvent(
      fleet,
      job,
      { type: "log", seq: 0, layerKey: null, stream: "stdout", data: "hello\n" },
      { webhookId: "msg_replayed" },
    );
    expect(first.status).toBe(200);
    const again = await sendEvent(
      fleet,
      job,
      { type: "log", seq: 0, layerKey: null, stream: "stdout", data: "hello\n" },
      { webhookId: "msg_replayed" },
    );
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("duplicate_event");
    const logs = await apiJson("GET", `/v1/builds/${r.body.buildId}/logs`, { token: t.token });
    expect(logs.body.chunks.filter((c: { data: string }) => c.data === "hello\n")).toHaveLength(1);
  });
});
