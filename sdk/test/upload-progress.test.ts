import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { LogSink } from "../src/build-logs.ts";
import { KilnClient } from "../src/client.ts";
import { resolveContext } from "../src/context.ts";
import { uploadContexts } from "../src/context-upload.ts";
import { formatBytes, PLAIN_EVERY_MS, PROGRESS_MIN_BYTES, progressText, uploadProgress } from "../src/upload-progress.ts";

const MiB = 1024 * 1024;

/** A sink that records statuses, and a clock the test moves. */
function recorder(mode: LogSink["mode"]) {
  const statuses: string[] = [];
  let now = 0;
  const progress = uploadProgress({ mode, status: (text) => void statuses.push(text) }, () => now);
  return { statuses, progress, advance: (ms: number) => (now += ms) };
}

describe("uploadProgress", () => {
  it("says nothing for uploads up to 4 MiB, or when the sink is off", () => {
    const { statuses, progress } = recorder("live");
    progress!(0, PROGRESS_MIN_BYTES);
    progress!(PROGRESS_MIN_BYTES, PROGRESS_MIN_BYTES);
    expect(statuses).toEqual([]);
    expect(recorder("off").progress).toBeUndefined();
  });

  it("on a TTY, follows every update with bytes, total and rate", () => {
    const { statuses, progress, advance } = recorder("live");
    progress!(0, 40 * MiB);
    advance(2000);
    progress!(10 * MiB, 40 * MiB);
    expect(statuses).toEqual([
      "Uploading build contexts: 0 B of 40.0 MiB (0%)",
      "Uploading build contexts: 10.0 MiB of 40.0 MiB (25%), 5.0 MiB/s",
    ]);
  });

  it("off a TTY, prints a line at each quarter and every few seconds, not at every chunk", () => {
    const { statuses, progress, advance } = recorder("plain");
    const total = 100 * MiB;
    for (let sent = 0; sent <= total; sent += MiB / 4) {
      progress!(sent, total);
      advance(10);
    }
    expect(statuses.map((s) => /\((\d+)%\)/.exec(s)![1])).toEqual(["0", "25", "50", "75", "100"]);
    // A slow upload also prints between quarters.
    const slow = recorder("plain");
    slow.progress!(0, total);
    for (let i = 1; i <= 4; i++) {
      slow.advance(PLAIN_EVERY_MS / 2);
      slow.progress!(i * MiB, total);
    }
    expect(slow.statuses).toHaveLength(3);
  });

  it("formats bytes in binary units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(5 * MiB)).toBe("5.0 MiB");
    expect(formatBytes(3 * 1024 * MiB)).toBe("3.0 GiB");
    expect(progressText(MiB, 8 * MiB, 100)).toBe("Uploading build contexts: 1.0 MiB of 8.0 MiB (12%)");
  });
});

describe("uploadContexts progress", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-upload-progress-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reports 0 first, the bytes as the body streams, and the total last", async () => {
    writeFileSync(path.join(dir, "big.bin"), Buffer.alloc(5 * MiB, 7));
    const sources = [{ kind: "file" as const, localPath: path.join(dir, "big.bin"), archivePath: "big.bin" }];
    const context = (await resolveContext(sources, path.join(dir, "cache")))!;
    const [blob] = [...context.blobs.keys()];
    const fileBytes = 5 * MiB;
    let received = 0;
    const fetch = (async (input: URL | string, init?: RequestInit) => {
      const url = new URL(String(input));
      if (url.pathname.endsWith("/missing")) return Response.json({ missing: [context.digest] });
      if (url.pathname.includes("/manifests/")) return Response.json({ missing: [blob] }, { status: 201 });
      received += (await new Response(init!.body).arrayBuffer()).byteLength;
      return new Response(null, { status: 201 });
    }) as typeof globalThis.fetch;
    const client = new KilnClient({ serverUrl: "http://kiln.test", token: "t", fetch });
    const calls: [number, number][] = [];
    const report = await uploadContexts(client, [context], (sent, total) => calls.push([sent, total]));
    expect(received).toBe(fileBytes);
    expect(report.bytesUploaded).toBe(fileBytes + context.sizeBytes);
    expect(report.uploaded).toEqual([context.digest, blob]);
    expect(calls[0]).toEqual([0, fileBytes]);
    expect(calls.at(-1)).toEqual([fileBytes, fileBytes]);
    expect(calls.length).toBeGreaterThan(3);
    expect(calls.every(([sent], i) => i === 0 || sent >= calls[i - 1]![0])).toBe(true);
  });
});
