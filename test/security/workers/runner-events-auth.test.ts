// Security review "Tenant isolation and trust", A: `POST /v1/runner/events` verifies the fleet's
// signature before it validates the event, bounds every error body, and answers an unknown
// attempt exactly like a bad signature (same status, same bytes), so it is neither an
// amplifier (a small request, a huge answer) nor an oracle of which attempts exist.
import { SELF } from "cloudflare:test";
import { newWebhookSecret, signWebhook } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { buildStub, dispatchedBuild, ORIGIN } from "../../workers/helpers.ts";
import { buildSnapshot } from "../../workers/object-probes.ts";

/** Bound on any error body of this route (the review asked for "a few KiB"). */
const MAX_ERROR_BYTES = 4096;

type Sent = { status: number; text: string; body: any };

async function post(body: string, headers: Record<string, string>): Promise<Sent> {
  const response = await SELF.fetch(`${ORIGIN}/v1/runner/events`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}

/** An event body with thousands of invalid entries: every one is a validation issue. */
function hostileEvent(job: { jobId: string; attemptId: string }, entries = 3000): string {
  const bad = { layerKey: 5, stream: "sideways", data: 7, extra: "x".repeat(40) };
  return JSON.stringify({
    type: "logs",
    jobId: job.jobId,
    attemptId: job.attemptId,
    fencingToken: 1,
    seq: -1,
    entries: Array(entries).fill(bad),
  });
}

describe("POST /v1/runner/events before the signature", () => {
  it("refuses an unsigned hostile body with a small 401, never its validation errors", async () => {
    const { job } = await dispatchedBuild(1);
    const body = hostileEvent(job);
    expect(body.length).toBeGreaterThan(100_000);
    for (const headers of [
      signWebhook(newWebhookSecret(), "msg_hostile", body),
      {} as Record<string, string>,
      { "webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA" },
    ]) {
      const sent = await post(body, headers);
      expect(sent.status).toBe(401);
      expect(sent.text.length).toBeLessThan(MAX_ERROR_BYTES);
      expect(sent.body.error.details).toBeUndefined();
    }
  });

  it("refuses bodies that name no attempt with a small 400 and no details", async () => {
    const junk = [
      JSON.stringify(Array(4000).fill({ a: 1 })),
      `{"jobId": 5, "attemptId": ${"[".repeat(100)}`,
      "{}",
      "null",
      "x".repeat(8192),
    ];
    for (const body of junk) {
      const sent = await post(body, signWebhook(newWebhookSecret(), "msg_junk", body));
      expect(sent.status, body.slice(0, 40)).toBe(400);
      expect(sent.text.length).toBeLessThan(1024);
      expect(sent.body.error).toMatchObject({ code: "invalid_request" });
      expect(sent.body.error.message).toContain("jobId");
    }
  });

  it("answers an unknown attempt byte for byte like a bad signature of a known one", async () => {
    const { fleet, job } = await dispatchedBuild(1);
    const event = (ids: { jobId: string; attemptId: string }) =>
      JSON.stringify({ type: "heartbeat", jobId: ids.jobId, attemptId: ids.attemptId, fencingToken: job.fencingToken });
    const knownWrongSecret = await post(event(job), signWebhook(newWebhookSecret(), "msg_a", event(job)));
    const unknowns = [
      { jobId: job.jobId, attemptId: "at-does-not-exist" },
      { jobId: "bd-does-not-exist", attemptId: job.attemptId },
      { jobId: "bd-does-not-exist", attemptId: "at-does-not-exist" },
    ];
    for (const ids of unknowns) {
      // Even signed with the fleet's real secret: an attempt that was never dispatched is not an answerable question.
      for (const secret of [fleet.secret, newWebhookSecret()]) {
        const unknown = await post(event(ids), signWebhook(secret, "msg_b", event(ids)));
        expect({ status: unknown.status, text: unknown.text }).toEqual({ status: knownWrongSecret.status, text: knownWrongSecret.text });
      }
    }
    expect(knownWrongSecret).toMatchObject({ status: 401, body: { error: { code: "bad_signature" } } });
    // Missing headers and stale timestamps read the same whether the attempt exists or not.
    const stale = new Date(Date.now() - 10 * 60_000);
    for (const headers of [(_: string) => ({}), (b: string) => signWebhook(fleet.secret, "msg_c", b, stale)]) {
      const known = await post(event(job), headers(event(job)));
      const unknown = await post(event(unknowns[0]!), headers(event(unknowns[0]!)));
      expect(known.status).toBe(401);
      expect(unknown.text).toBe(known.text);
    }
  });
});

describe("POST /v1/runner/events after the signature", () => {
  it("bounds the validation errors of a signed hostile body and says how many were dropped", async () => {
    const { fleet, job, buildId } = await dispatchedBuild(1);
    const statusOf = async () => (await buildSnapshot(buildStub(buildId)))!.build.machine.status;
    const before = await statusOf();
    const body = hostileEvent(job);
    const sent = await post(body, signWebhook(fleet.secret, "msg_signed_hostile", body));
    expect(sent.status).toBe(400);
    expect(sent.text.length).toBeLessThan(MAX_ERROR_BYTES);
    const details = sent.body.error.details as { code: string; path: unknown[]; message: string }[];
    expect(details.length).toBeGreaterThan(1);
    expect(details.length).toBeLessThanOrEqual(21);
    const last = details.at(-1)!;
    expect(last.code).toBe("truncated");
    expect(last.message).toMatch(/^\d+ more issues were not listed/);
    for (const issue of details) expect(Object.keys(issue).sort()).toEqual(["code", "message", "path"]);
    // Nothing happened to the build.
    expect(await statusOf()).toBe(before);
  });

  it("still accepts a well-signed event", async () => {
    const { fleet, job } = await dispatchedBuild(1);
    const body = JSON.stringify({ type: "accepted", jobId: job.jobId, attemptId: job.attemptId, fencingToken: job.fencingToken });
    const sent = await post(body, signWebhook(fleet.secret, "msg_ok", body));
    expect(sent).toMatchObject({ status: 200, body: { ok: true, cancel: false } });
  });
});
