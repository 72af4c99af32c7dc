// The bounded log buffer: FIFO order across the memory/spill boundary, batching limits,
// backpressure and the spill file's cleanup.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LogBuffer } from "../src/log-buffer.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-logbuf-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every batch the buffer gives, until it is empty. */
function batches(buffer: LogBuffer, maxBytes = 1024 * 1024, maxEntries?: number) {
  const out = [];
  for (let b = buffer.takeBatch(maxBytes, maxEntries); b.length > 0; b = buffer.takeBatch(maxBytes, maxEntries)) out.push(b);
  return out;
}
const drain = (buffer: LogBuffer, maxBytes?: number) => batches(buffer, maxBytes).flat();

describe("LogBuffer", () => {
  it("batches records in order, joining runs of one layer and stream, within the size and entry limits", () => {
    const buffer = new LogBuffer({ spillPath: path.join(dir, "spill") });
    const fill = () => {
      buffer.append({ layerKey: "a", stream: "stdout", data: "1\n" });
      buffer.append({ layerKey: "a", stream: "stdout", data: "2\n" });
      buffer.append({ layerKey: "a", stream: "stderr", data: "err\n" });
      buffer.append({ layerKey: "b", stream: "stdout", data: "3\n" });
      buffer.append({ layerKey: "a", stream: "stdout", data: "4\n" });
    };
    fill();
    expect(batches(buffer)).toEqual([
      [
        { layerKey: "a", stream: "stdout", data: "1\n2\n" },
        { layerKey: "a", stream: "stderr", data: "err\n" },
        { layerKey: "b", stream: "stdout", data: "3\n" },
        { layerKey: "a", stream: "stdout", data: "4\n" },
      ],
    ]);
    fill();
    expect(batches(buffer, 1024, 2).map((b) => b.length)).toEqual([2, 2]);
    const big = "x".repeat(3000);
    for (let i = 0; i < 4; i++) buffer.append({ layerKey: null, stream: "stdout", data: big });
    expect(batches(buffer, 7000).map((b) => b.map((e) => e.data.length))).toEqual([[6000], [6000]]);
  });

  it("splits huge records so no batch can exceed 1 MiB, without splitting a surrogate pair", () => {
    const buffer = new LogBuffer({ spillPath: path.join(dir, "spill"), memoryBytes: 64 * 1024 * 1024 });
    const text = "😀".repeat(400_000); // 800,000 UTF-16 units, 1.6 MB of UTF-8
    buffer.append({ layerKey: null, stream: "stdout", data: text });
    const all = batches(buffer);
    for (const b of all) expect(b.reduce((n, e) => n + Buffer.byteLength(e.data), 0)).toBeLessThanOrEqual(1024 * 1024);
    expect(
      all
        .flat()
        .map((c) => c.data)
        .join(""),
    ).toBe(text);
  });

  it("spills past the memory limit, keeps FIFO order, never writes more than it was given, and deletes the file", async () => {
    const spillPath = path.join(dir, "spill");
    const buffer = new LogBuffer({ spillPath, memoryBytes: 100 });
    const lines = Array.from({ length: 500 }, (_, i) => `line-${i}\n`);
    for (const line of lines) buffer.append({ layerKey: null, stream: "stdout", data: line });
    expect(buffer.spilling).toBe(true);
    expect(existsSync(spillPath)).toBe(true);
    expect(await readFile(spillPath, "utf8")).toContain("line-499");
    // Interleave reading and writing across the boundary.
    let out = "";
    out += buffer
      .takeBatch(50)
      .map((c) => c.data)
      .join("");
    buffer.append({ layerKey: null, stream: "stdout", data: "late-1\n" });
    out += drain(buffer, 1000)
      .map((c) => c.data)
      .join("");
    buffer.append({ layerKey: null, stream: "stdout", data: "late-2\n" });
    out += drain(buffer)
      .map((c) => c.data)
      .join("");
    expect(out).toBe(`${lines.join("")}late-1\nlate-2\n`);
    expect(buffer.spilling).toBe(false);
    buffer.dispose();
    expect(existsSync(spillPath)).toBe(false);
  });

  it("asks the producer to pause past the spill limit and wakes it once drained", async () => {
    const buffer = new LogBuffer({ spillPath: path.join(dir, "spill"), memoryBytes: 1000, spillMaxBytes: 1000 });
    let ok = true;
    let appended = 0;
    while (ok) {
      ok = buffer.append({ layerKey: null, stream: "stdout", data: "y".repeat(100) });
      appended++;
    }
    expect(appended).toBe(20);
    let woken = false;
    const waiting = buffer.waitForDrain().then(() => {
      woken = true;
    });
    await Promise.resolve();
    expect(woken).toBe(false);
    buffer.takeBatch(1500);
    await waiting;
    expect(woken).toBe(true);
    // Nothing was dropped.
    expect(drain(buffer).reduce((n, c) => n + c.data.length, 0)).toBe(20 * 100 - 1500);
  });
});
