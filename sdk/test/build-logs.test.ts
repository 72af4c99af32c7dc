import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { followLog, LineAssembler, type LogChunk, logSink } from "../src/build-logs.ts";
import { KilnClient } from "../src/client.ts";

const chunk = (pos: number, data: string, layerKey: string | null = "k1", stream: LogChunk["stream"] = "stdout"): LogChunk => ({
  pos,
  attempt: 1,
  layerKey,
  stream,
  data,
  atMs: pos,
});

describe("followLog", () => {
  it("resumes from the last cursor after a dropped connection: nothing lost, nothing repeated", async () => {
    const log = [chunk(1, "a\n"), chunk(2, "b\n"), chunk(3, "c\n")];
    const cursors: number[] = [];
    let calls = 0;
    const fetch = (async (input: URL | string) => {
      const url = new URL(String(input));
      const cursor = Number(url.searchParams.get("cursor"));
      cursors.push(cursor);
      calls++;
      // The second poll's connection drops, every retry included.
      if (calls >= 2 && calls <= 5) throw new TypeError("socket hang up");
      const chunks = log.filter((c) => c.pos > cursor).slice(0, 1);
      const next = chunks.at(-1)?.pos ?? cursor;
      return new Response(JSON.stringify({ status: "running", chunks, cursor: next, done: next === 3 }), {
        headers: { "content-type": "application/json" },
      });
    }) as typeof globalThis.fetch;
    const client = new KilnClient({ serverUrl: "http://kiln.test", token: "t", fetch, maxRetries: 3 });
    const seen: string[] = [];
    for await (const c of followLog(client, "bd-1")) seen.push(c.data);
    expect(seen).toEqual(["a\n", "b\n", "c\n"]);
    expect(cursors.slice(1, 6)).toEqual([1, 1, 1, 1, 1]);
  }, 30_000);
});

describe("LineAssembler", () => {
  it("joins partial lines per layer and stream and flushes the rest", () => {
    const lines = new LineAssembler();
    expect(lines.push(chunk(1, "hel"))).toEqual([]);
    expect(lines.push(chunk(2, "oops\n", "k1", "stderr"))).toEqual(["oops"]);
    expect(lines.push(chunk(3, "lo\nwor"))).toEqual(["hello"]);
    expect(lines.flush()).toEqual([{ layerKey: "k1", stream: "stdout", line: "wor" }]);
  });
});

describe("logSink", () => {
  it("writes plain prefixed lines off a TTY and each status once", () => {
    const out = new PassThrough();
    let text = "";
    out.on("data", (d: Buffer) => (text += d.toString()));
    const sink = logSink(true, out as unknown as NodeJS.WriteStream);
    sink.status("Building layer [1/2]");
    sink.line("[1/2]", "step one", "stdout");
    sink.status("Building layer [1/2]");
    sink.status("Building layer [2/2]");
    sink.close();
    expect(text).toBe("Building layer [1/2]\n[1/2] step one\nBuilding layer [2/2]\n");
  });

  it("is silent with logs: false", () => {
    const sink = logSink(false);
    expect(() => (sink.line("[1/1]", "x", "stdout"), sink.status("y"), sink.close())).not.toThrow();
  });
});
