// Live, resumable build logs: chunks in the runner's order (held back across gaps), a cursor that
// never loses or repeats a chunk, a long-poll woken by new chunks, and the R2 archive afterwards.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { apiJson, completeJob, dispatchedBuild, sendEvent } from "./helpers.ts";

const log = (seq: number, data: string) => ({ type: "log" as const, seq, layerKey: null, stream: "stdout" as const, data });
/** A batched event: entries as `[stream, data]`, all job-level. */
const logs = (seq: number, entries: [stream: "stdout" | "stderr", data: string][]) => ({
  type: "logs" as const,
  seq,
  entries: entries.map(([stream, data]) => ({ layerKey: null, stream, data })),
});

async function readAll(token: string, buildId: string, limit: number) {
  const seen: { pos: number; data: string; stream: string }[] = [];
  let cursor = 0;
  for (let i = 0; i < 100; i++) {
    const page = await apiJson("GET", `/v1/builds/${buildId}/logs?cursor=${cursor}&limit=${limit}`, { token });
    expect(page.status).toBe(200);
    seen.push(...page.body.chunks);
    if (page.body.chunks.length === 0) return { seen, done: page.body.done };
    cursor = page.body.cursor;
  }
  throw new Error("log never ended");
}

describe("GET /v1/builds/:id/logs", () => {
  it("shows chunks in sequence order, holding back those past a gap, ignoring duplicates", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(1);
    await sendEvent(fleet, job, log(1, "second\n"));
    let out = (await readAll(t.token, buildId, 100)).seen.filter((c) => c.stream === "stdout");
    expect(out).toEqual([]);
    await sendEvent(fleet, job, log(0, "first\n"));
    await sendEvent(fleet, job, log(0, "first again\n"));
    await sendEvent(fleet, job, log(2, "third\n"));
    out = (await readAll(t.token, buildId, 100)).seen.filter((c) => c.stream === "stdout");
    expect(out.map((c) => c.data)).toEqual(["first\n", "second\n", "third\n"]);
  });

  it("stores a batched event's entries in order under its sequence number, shared with single chunks, across gaps", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(1);
    expect(
      (
        await sendEvent(
          fleet,
          job,
          logs(2, [
            ["stdout", "c1\n"],
            ["stderr", "c2\n"],
          ]),
        )
      ).status,
    ).toBe(200);
    expect((await sendEvent(fleet, job, log(1, "b\n"))).status).toBe(200);
    const held = (await readAll(t.token, buildId, 100)).seen.filter((c) => c.stream !== "system");
    expect(held).toEqual([]);
    await sendEvent(
      fleet,
      job,
      logs(0, [
        ["stdout", "a1\n"],
        ["stderr", "a2\n"],
        ["stdout", "a3\n"],
      ]),
    );
    await sendEvent(fleet, job, logs(0, [["stdout", "a1 again\n"]]));
    const out = (await readAll(t.token, buildId, 100)).seen.filter((c) => c.stream !== "system");
    expect(out.map((c) => [c.stream, c.data])).toEqual([
      ["stdout", "a1\n"],
      ["stderr", "a2\n"],
      ["stdout", "a3\n"],
      ["stdout", "b\n"],
      ["stdout", "c1\n"],
      ["stderr", "c2\n"],
    ]);
  });

  it("keeps a batch still held behind a gap when the build ends, after a note of what never arrived", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(1);
    await sendEvent(
      fleet,
      job,
      logs(1, [
        ["stdout", "late 1\n"],
        ["stderr", "late 2\n"],
      ]),
    );
    await completeJob(fleet, job);
    const { seen } = await readAll(t.token, buildId, 100);
    const text = seen.map((c) => c.data).join("");
    expect(text).toContain("log chunks 0..0 of attempt 1 never arrived");
    expect(text.indexOf("never arrived")).toBeLessThan(text.indexOf("late 1\nlate 2\n"));
  });

  it("refuses a batched event that is empty, too large or malformed, and stores nothing", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(1);
    const bad = [
      { type: "logs", seq: 0, entries: [] },
      {
        type: "logs",
        seq: 0,
        entries: [
          { layerKey: null, stream: "stdout", data: "x".repeat(600_000) },
          { layerKey: null, stream: "stdout", data: "y".repeat(600_000) },
        ],
      },
      { type: "logs", seq: 0, entries: [{ layerKey: "not-a-key", stream: "stdout", data: "x" }] },
      { type: "logs", seq: 0, entries: [{ layerKey: null, stream: "stdin", data: "x" }] },
    ];
    for (const event of bad) expect((await sendEvent(fleet, job, event as never)).status).toBe(400);
    expect((await readAll(t.token, buildId, 100)).seen.filter((c) => c.stream !== "system")).toEqual([]);
  });

  it("resumes from a cursor without losing or repeating a chunk", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(1);
    for (let i = 0; i < 7; i++) await sendEvent(fleet, job, log(i, `line ${i}\n`));
    const whole = (await readAll(t.token, buildId, 1000)).seen;
    const paged = (await readAll(t.token, buildId, 2)).seen;
    expect(paged).toEqual(whole);
    expect(new Set(paged.map((c) => c.pos)).size).toBe(paged.length);
    expect(paged.filter((c) => c.stream === "stdout").map((c) => c.data)).toEqual(Array.from({ length: 7 }, (_, i) => `line ${i}\n`));
    expect(paged.some((c) => c.stream === "system" && c.data.includes("dispatching 1 layer"))).toBe(true);
  });

  it("long-polls: a waiting reader gets the next chunk as soon as it arrives", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(1);
    const { body } = await apiJson("GET", `/v1/builds/${buildId}/logs?cursor=0&limit=1000`, { token: t.token });
    const waiting = apiJson("GET", `/v1/builds/${buildId}/logs?cursor=${body.cursor}&waitSeconds=20`, { token: t.token });
    await sendEvent(fleet, job, log(0, "news\n"));
    const page = (await waiting).body;
    expect(page.chunks.map((c: { data: string }) => c.data)).toEqual(["news\n"]);
    expect(page.done).toBe(false);
  });

  it("archives the log to R2 when the build ends and serves it from there, unchanged", async () => {
    const { t, fleet, job, buildId } = await dispatchedBuild(1);
    for (let i = 0; i < 3; i++) await sendEvent(fleet, job, log(i, `out ${i}\n`));
    const live = (await readAll(t.token, buildId, 1000)).seen;
    await completeJob(fleet, job);
    const build = await apiJson("GET", `/v1/builds/${buildId}`, { token: t.token });
    expect(build.body.status).toBe("succeeded");
    const listed = await env.LOGS.list({ prefix: `logs/${t.workspaceId}/${buildId}/` });
    expect(listed.objects.map((o) => o.key.split("/").at(-1))).toContain("index.json");
    const archived = await readAll(t.token, buildId, 2);
    expect(archived.done).toBe(true);
    expect(archived.seen.slice(0, live.length)).toEqual(live);
    expect(archived.seen.at(-1)!.data).toContain("build succeeded");
  });
});
