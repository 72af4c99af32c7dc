// The log shipper: masking before buffering (and so before the disk), gapless sequence
// numbers, chunks of at most the configured size, backlogs sent back-to-back, undelivered
// bytes reported, backpressure, and the tail for failure reports.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeliveryOutcome, EventBody } from "../src/event-client.ts";
import { LogBuffer } from "../src/log-buffer.ts";
import { LogShipper } from "../src/log-shipper.ts";
import { silentLogger } from "../src/logger.ts";
import { SecretMasker } from "../src/secret-mask.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-shipper-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type LogBody = Extract<EventBody, { type: "logs" }>;
/** The text of an event's entries. */
const text = (b: LogBody) => b.entries.map((e) => e.data).join("");

function shipper(
  deliver: (body: LogBody) => Promise<DeliveryOutcome>,
  options: { memoryBytes?: number; chunkBytes?: number; flushMs?: number; secrets?: string[] } = {},
) {
  return new LogShipper({
    buffer: new LogBuffer({ spillPath: path.join(dir, "spill"), memoryBytes: options.memoryBytes ?? 1024 * 1024 }),
    masker: new SecretMasker(options.secrets ?? []),
    deliver: (body) => deliver(body as LogBody),
    logger: silentLogger,
    flushMs: options.flushMs ?? 20,
    chunkBytes: options.chunkBytes ?? 1024 * 1024,
  });
}

describe("LogShipper", () => {
  it("numbers chunks from 0 without gaps, one delivery at a time, in order", async () => {
    const received: LogBody[] = [];
    let inFlight = 0;
    const s = shipper(async (body) => {
      expect(++inFlight).toBe(1);
      await new Promise((r) => setTimeout(r, 5));
      received.push(body);
      inFlight--;
      return "delivered";
    });
    s.start();
    const out = s.sink("k".repeat(64), "stdout");
    for (let i = 0; i < 5; i++) {
      out.write(Buffer.from(`line ${i}\n`));
      await new Promise((r) => setTimeout(r, 40));
    }
    out.end();
    expect(await s.close(5_000)).toBe(0);
    expect(received.map((b) => b.seq)).toEqual(received.map((_, i) => i));
    expect(received.map(text).join("")).toBe("line 0\nline 1\nline 2\nline 3\nline 4\n");
  });

  it("masks secrets even when they straddle writes, and never spills them to disk", async () => {
    const secret = "very-secret-token-123";
    const received: LogBody[] = [];
    let blocked = true;
    const s = shipper(
      async (body) => {
        while (blocked) await new Promise((r) => setTimeout(r, 5));
        received.push(body);
        return "delivered";
      },
      { memoryBytes: 64, chunkBytes: 64, secrets: [secret] },
    );
    s.start();
    const out = s.sink(null, "stderr");
    const written = `token: ${secret}\n`.repeat(20);
    for (let i = 0; i < written.length; i += 5) out.write(Buffer.from(written.slice(i, i + 5)));
    out.end();
    // Orchestrator blocked: the log spilled, masked.
    const spilled = await readFile(path.join(dir, "spill"), "utf8");
    expect(spilled).toContain("***");
    expect(spilled).not.toContain("very-secret");
    blocked = false;
    await s.close(5_000);
    expect(received.map(text).join("")).toBe("token: ***\n".repeat(20));
    expect(s.tail()).toEqual(Array.from({ length: 20 }, () => "token: ***"));
  });

  it("decodes UTF-8 split across writes", async () => {
    const received: LogBody[] = [];
    const s = shipper(async (b) => (received.push(b), "delivered"));
    s.start();
    const out = s.sink(null, "stdout");
    const bytes = Buffer.from("héllo → 😀\n");
    for (const byte of bytes) out.write(Buffer.from([byte]));
    out.end();
    await s.close(5_000);
    expect(received.map(text).join("")).toBe("héllo → 😀\n");
  });

  it("keeps every chunk within the chunk size and sends a backlog back-to-back", async () => {
    const received: LogBody[] = [];
    const s = shipper(async (b) => (received.push(b), "delivered"), { chunkBytes: 1000, flushMs: 60_000 });
    s.start();
    const out = s.sink(null, "stdout");
    for (let i = 0; i < 100; i++) out.write(Buffer.from(`${String(i).padStart(3, "0")}${"x".repeat(96)}\n`));
    out.end();
    const started = Date.now();
    await s.close(5_000);
    expect(Date.now() - started).toBeLessThan(30_000); // not one flush interval per chunk
    for (const b of received) expect(Buffer.byteLength(text(b))).toBeLessThanOrEqual(1000);
    expect(received.map(text).join("").split("\n").filter(Boolean)).toHaveLength(100);
  });

  it("sends what several layers and streams printed in one event, each entry one layer's stream, in order", async () => {
    const received: LogBody[] = [];
    const s = shipper(async (b) => (received.push(b), "delivered"), { flushMs: 60_000 });
    s.start();
    const [a, b] = ["a".repeat(64), "b".repeat(64)];
    s.sink(a, "stdout").write(Buffer.from("a-out\n"));
    s.sink(a, "stderr").write(Buffer.from("a-err\n"));
    s.system(b, "b-system");
    s.sink(a, "stdout").write(Buffer.from("a-out-2\n"));
    await s.close(5_000);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      type: "logs",
      seq: 0,
      entries: [
        { layerKey: a, stream: "stdout", data: "a-out\n" },
        { layerKey: a, stream: "stderr", data: "a-err\n" },
        { layerKey: b, stream: "system", data: "b-system\n" },
        { layerKey: a, stream: "stdout", data: "a-out-2\n" },
      ],
    });
  });

  it("reports undelivered bytes when the orchestrator stays unreachable past the final flush", async () => {
    const s = shipper(async () => "gave_up" as const);
    s.start();
    s.system(null, "hello");
    expect(await s.close(100)).toBeGreaterThan(0);
  });

  it("tells a producer to pause when the buffer is full", async () => {
    const s = new LogShipper({
      buffer: new LogBuffer({ spillPath: path.join(dir, "spill"), memoryBytes: 100, spillMaxBytes: 100 }),
      masker: new SecretMasker([]),
      deliver: () => new Promise(() => {}),
      logger: silentLogger,
    });
    const out = s.sink(null, "stdout");
    const results = Array.from({ length: 10 }, () => out.write(Buffer.from("z".repeat(50))));
    expect(results.slice(0, 3)).toEqual([true, true, true]);
    expect(results.at(-1)).toBe(false);
  });
});
