// Child processes: output streamed with backpressure, and cancellation that escalates from
// SIGTERM to SIGKILL for a whole process group that ignores SIGTERM.
import { describe, expect, it } from "vitest";
import type { OutputSink } from "../src/log-shipper.ts";
import { captureProcess, runProcess } from "../src/process.ts";

function collector(): OutputSink & { text: () => string } {
  const chunks: Buffer[] = [];
  return { write: (d) => (chunks.push(d), true), waitForDrain: async () => {}, end() {}, text: () => Buffer.concat(chunks).toString() };
}

describe("runProcess", () => {
  it("streams stdout and stderr and reports the exit code", async () => {
    const out = collector();
    const err = collector();
    const result = await runProcess(
      { argv: ["sh", "-c", "echo out; echo err >&2; exit 3"], env: { EXTRA: "1" } },
      { stdout: out, stderr: err },
    );
    expect(result).toEqual({ exitCode: 3, signal: null, aborted: false });
    expect(out.text()).toBe("out\n");
    expect(err.text()).toBe("err\n");
  });

  it("pauses the child while the sink is full and loses nothing", async () => {
    const chunks: Buffer[] = [];
    let full = false;
    let pauses = 0;
    const sink: OutputSink = {
      write(d) {
        chunks.push(d);
        full = !full; // every other write asks for a pause
        return !full;
      },
      waitForDrain: () => (pauses++, new Promise((r) => setTimeout(r, 5))),
      end() {},
    };
    await runProcess({ argv: ["sh", "-c", "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo line-$i; done"] }, { stdout: sink });
    const lines = Buffer.concat(chunks).toString().trim().split("\n");
    expect(lines).toEqual(Array.from({ length: 2000 }, (_, i) => `line-${i + 1}`));
    expect(pauses).toBeGreaterThan(0);
  });

  it("sends SIGTERM to the group and SIGKILL after the grace period when it is ignored", async () => {
    const controller = new AbortController();
    const out = collector();
    // The shell and its child both ignore SIGTERM (ignored dispositions survive exec).
    const running = runProcess(
      { argv: ["sh", "-c", 'trap "" TERM; echo ready; sleep 30 & wait'] },
      { stdout: out, signal: controller.signal, killGraceMs: 500 },
    );
    while (!out.text().includes("ready")) await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    controller.abort();
    const result = await running;
    expect(result).toMatchObject({ aborted: true, signal: "SIGKILL" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  });

  it("stops at SIGTERM when the process honours it", async () => {
    const controller = new AbortController();
    const out = collector();
    const running = runProcess(
      { argv: ["sh", "-c", "echo ready; exec sleep 30"] },
      { stdout: out, signal: controller.signal, killGraceMs: 10_000 },
    );
    while (!out.text().includes("ready")) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    expect(await running).toMatchObject({ aborted: true, signal: "SIGTERM" });
  });

  it("rejects when the program does not exist; captureProcess throws with stderr", async () => {
    await expect(runProcess({ argv: ["/nonexistent/kiln-tool"] })).rejects.toThrow(/ENOENT/);
    expect(await captureProcess({ argv: ["sh", "-c", "echo hi"] })).toBe("hi\n");
    await expect(captureProcess({ argv: ["sh", "-c", "echo broken >&2; exit 2"] })).rejects.toThrow(/exited with 2: broken/);
  });
});
