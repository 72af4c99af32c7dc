// A runner that does not speak the job's protocol version: it answers the dispatch with
// 400 `protocol_unsupported` and a message saying what to upgrade (runner/src/protocol-check.ts).
// The build fails at once as `infra` with that message (no retry), and the dispatch carries the
// job's protocolVersion and the orchestrator's release in its user-agent.
//
// The runner is played inside workerd by intercepting the Build object's fetch to one URL
// (test files and the Worker's objects share the isolate): the fleet recorder answers only
// fixed statuses, and this needs the runner's error body.
import { type Job, KILN_VERSION, newWebhookSecret, PROTOCOL_VERSION } from "@kiln-build/protocol";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { composeJob } from "../../durable-objects/job.ts";
import { dispatchJob } from "../../workers/dispatch.ts";
import { apiJson, chain, layer, newFleet, newTenant, settle, submitImage } from "./helpers.ts";

const RUNNER_URL = "https://future-runner.kiln.test/v1/jobs";

type Received = { job: Job; userAgent: string | null };
let received: Received[];
// What the fake runner answers: its status and JSON body, from the job and the user-agent it got.
let answer: (r: Received) => { status: number; body: string };

// The reference runner's refusal for a runner one protocol ahead of this orchestrator.
function futureRunnerRefusal({ job, userAgent }: Received): string {
  const release = /^kiln-orchestrator\/(\S+)/.exec(userAgent ?? "")?.[1] ?? "<the orchestrator's Kiln version>";
  return (
    `The job speaks Kiln runner protocol ${job.protocolVersion}, but this runner (@kiln-build/runner 9.0.0) speaks protocol ${job.protocolVersion + 1}. ` +
    `Upgrade the orchestrator to Kiln 9.0.0, or install the runner of the orchestrator's release (npm install -g @kiln-build/runner@${release}) and restart it.`
  );
}

const refusal = (r: Received) => ({
  status: 400,
  body: JSON.stringify({ error: { code: "protocol_unsupported", message: futureRunnerRefusal(r) } }),
});

beforeEach(() => {
  received = [];
  answer = refusal;
  const realFetch = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (request.url !== RUNNER_URL) return realFetch(input, init);
    const r = { job: (await request.json()) as Job, userAgent: request.headers.get("user-agent") };
    received.push(r);
    const { status, body } = answer(r);
    return new Response(body, { status, headers: { "content-type": "application/json" } });
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

function job(): Job {
  return composeJob({
    buildId: "bd-protocol",
    workspaceId: "ws",
    workspaceName: "acme",
    origin: "http://127.0.0.1:8787",
    mode: "normal",
    builderVersion: "2025.06",
    attemptId: "at-protocol",
    fencingToken: 1,
    parentReference: null,
    layers: [{ index: 0, key: "a".repeat(64), spec: layer(["RUN true"], {}, true) }],
    secrets: {},
    token: "kjt_x",
    deadlineMs: Date.now() + 3_600_000,
  });
}

describe("dispatchJob and the protocol version", () => {
  it("sends the job's protocolVersion and the orchestrator's release, and passes on a protocol_unsupported refusal", async () => {
    const result = await dispatchJob(RUNNER_URL, newWebhookSecret(), job());
    expect(received).toHaveLength(1);
    expect(received[0]!.job.protocolVersion).toBe(PROTOCOL_VERSION);
    expect(received[0]!.userAgent).toBe(`kiln-orchestrator/${KILN_VERSION}`);
    expect(result).toEqual({
      ok: false,
      error: { code: "protocol_unsupported", status: 400, message: futureRunnerRefusal(received[0]!) },
    });
    expect(futureRunnerRefusal(received[0]!)).toContain(`npm install -g @kiln-build/runner@${KILN_VERSION}`);
  });

  it("treats any other 400 (another code, no message, not JSON, too long) as an ordinary refusal", async () => {
    for (const body of [
      JSON.stringify({ error: { code: "invalid_job", message: "the dispatch is not a valid job" } }),
      JSON.stringify({ error: { code: "protocol_unsupported" } }),
      "not json",
      JSON.stringify({ error: { code: "protocol_unsupported", message: "x".repeat(20_000) } }),
    ]) {
      answer = () => ({ status: 400, body });
      expect(await dispatchJob(RUNNER_URL, newWebhookSecret(), job())).toEqual({
        ok: false,
        error: { code: "refused", status: 400, message: "The fleet refused the job with HTTP 400." },
      });
    }
  });
});

describe("a build dispatched to a runner of another protocol version", () => {
  it("fails at once as infra with the runner's message, without retrying", async () => {
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId, { url: RUNNER_URL });
    const submitted = await submitImage(t.token, chain(2));
    const s = await settle(submitted.body.buildId);

    expect(received).toHaveLength(1);
    const message = futureRunnerRefusal(received[0]!);
    expect(s.build.machine).toMatchObject({ status: "failed", attemptNo: 1, failure: { reason: "infra" } });
    expect(s.build.machine.failure!.message).toBe(`Fleet '${fleet.name}' refused the job: ${message}`);
    expect(s.timers.retry).toBeUndefined();
    expect(s.attempts[0]!.endedMs).not.toBeNull();

    const view = await apiJson("GET", `/v1/images/${submitted.body.id}`, { token: t.token });
    expect(view.body).toMatchObject({ status: "failed", failure: { reason: "infra" } });
    expect(view.body.failure.message).toContain(message);
    expect(view.body.failure.message).not.toMatch(/gave up after/);
  });
});
