import { PassThrough } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import { followLog, LineAssembler, type LogChunk, logSink } from "../src/build-logs.ts";
import type { Terminal } from "../src/cli/terminal.ts";
import { KilnClient } from "../src/client.ts";

/** A stream that collects what is written; `tty` makes it look like a terminal of that width. */
function capture(tty?: { columns: number }) {
  const out = new PassThrough();
  let text = "";
  out.on("data", (d: Buffer) => (text += d.toString()));
  if (tty) Object.assign(out, { isTTY: true, columns: tty.columns });
  return { out: out as unknown as NodeJS.WriteStream, text: () => text };
}
const plain: Terminal = { color: false, interactive: false, columns: undefined };

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
    const { out, text } = capture();
    const sink = logSink(true, out, plain);
    expect(sink.mode).toBe("plain");
    sink.status("Building layer [1/2]");
    sink.line("[1/2]", "step one", "stdout");
    sink.status("Building layer [1/2]");
    sink.status("Building layer [2/2]");
    sink.close();
    expect(text()).toBe("Building layer [1/2]\n[1/2] step one\nBuilding layer [2/2]\n");
  });

  it("decides from the stream by default: a pipe gets plain lines", () => {
    expect(logSink(true, capture().out).mode).toBe("plain");
  });

  it("dims the prefix only with colour, and strips the build's own escapes without it", async () => {
    const colored = capture();
    logSink(true, colored.out, { ...plain, color: true }).line("[1/1]", "\x1b[31mred\x1b[0m", "stdout");
    const bare = capture();
    logSink(true, bare.out, plain).line("[1/1]", "\x1b[31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07", "stdout");
    await new Promise((r) => setImmediate(r));
    expect(colored.text()).toBe("\x1b[2m[1/1]\x1b[0m \x1b[31mred\x1b[0m\n");
    expect(bare.text()).toBe("[1/1] red link\n");
  });

  it("redraws a status line on an interactive terminal, without any escape when colour is off", async () => {
    vi.useFakeTimers();
    try {
      const { out, text } = capture({ columns: 40 });
      const sink = logSink(true, out, { color: false, interactive: true, columns: 40 });
      expect(sink.mode).toBe("live");
      sink.status("Uploading build contexts");
      vi.advanceTimersByTime(200);
      sink.line("[1/1]", "\x1b[1mhello\x1b[0m", "stdout");
      sink.status("Building layer [1/1]");
      vi.advanceTimersByTime(200);
      sink.close();
      vi.useRealTimers();
      await new Promise((r) => setImmediate(r));
      expect(text()).not.toContain("\x1b");
      expect(text()).toContain("Uploading build contexts");
      expect(text()).toContain("[1/1] hello\n");
      expect(text()).toContain("Building layer [1/1]");
    } finally {
      vi.useRealTimers();
    }
  });

  it("is silent with logs: false", () => {
    const sink = logSink(false);
    expect(sink.mode).toBe("off");
    expect(() => (sink.line("[1/1]", "x", "stdout"), sink.status("y"), sink.close())).not.toThrow();
  });
});
