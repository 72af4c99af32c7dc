import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FRAME_MS, MIN_REDRAW_MS, StatusLine } from "../src/status-line.ts";

/** A fake TTY stream that records every write. */
function fakeTty(columns: number | undefined) {
  const writes: string[] = [];
  return { writes, columns, write: (s: string) => void writes.push(s), text: () => writes.join("") };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("StatusLine", () => {
  it("draws one line narrower than the terminal, and clears it with ESC[K when colour is on", () => {
    const out = fakeTty(20);
    const status = new StatusLine(out, { color: true, text: "Building layer [1/2] with a long tail" });
    vi.advanceTimersByTime(0);
    const drawn = out.writes.at(-1)!;
    expect(drawn.startsWith("\r")).toBe(true);
    expect(drawn.endsWith("\x1b[K")).toBe(true);
    expect([...drawn.slice(1, -3)]).toHaveLength(19);
    status.print("[1/2] hello\n");
    expect(out.writes.slice(-2)).toEqual(["\r\x1b[K", "[1/2] hello\n"]);
    // Drawn again below the line.
    vi.advanceTimersByTime(FRAME_MS);
    expect(out.writes.at(-1)).toMatch(/^\r. Building/);
    status.close();
    status.close();
    const closed = out.writes.length;
    vi.advanceTimersByTime(10 * FRAME_MS);
    expect(out.writes.at(-1)).toBe("\r\x1b[K");
    expect(out.writes.length).toBe(closed);
  });

  it("writes no escape sequence without colour: spaces clear what was drawn", () => {
    const out = fakeTty(80);
    const status = new StatusLine(out, { color: false, text: "Uploading build contexts" });
    vi.advanceTimersByTime(0);
    status.text = "Building";
    vi.advanceTimersByTime(FRAME_MS);
    status.print("[1/1] line\n");
    vi.advanceTimersByTime(FRAME_MS);
    status.close();
    expect(out.text()).not.toContain("\x1b");
    // The shorter status overwrote the longer one's tail with spaces.
    expect(out.text()).toContain(`Building${" ".repeat("Uploading build contexts".length - "Building".length)}`);
    expect(out.text()).toContain(`\r${" ".repeat("⠋ Building".length)}\r[1/1] line\n`);
  });

  it("redraws at most every MIN_REDRAW_MS however fast lines and statuses come", () => {
    const out = fakeTty(80);
    const status = new StatusLine(out, { color: true, text: "start" });
    let draws = 0;
    const count = () => (draws = out.writes.filter((w) => w.startsWith("\r") && w.length > 4).length);
    for (let ms = 0; ms < 1000; ms++) {
      status.text = `status ${ms}`;
      status.print(`line ${ms}\n`);
      vi.advanceTimersByTime(1);
    }
    count();
    status.close();
    expect(draws).toBeGreaterThan(5);
    expect(draws).toBeLessThanOrEqual(1000 / MIN_REDRAW_MS + 1);
    // The lines themselves all got through.
    expect(out.writes.filter((w) => w.startsWith("line "))).toHaveLength(1000);
  });

  it("draws nothing, and never loops, on a terminal that reports no width", () => {
    for (const columns of [0, undefined, 1, Number.NaN]) {
      const out = fakeTty(columns);
      const status = new StatusLine(out, { color: true, text: "Building" });
      vi.advanceTimersByTime(10 * FRAME_MS);
      status.print("x\n");
      status.close();
      expect(out.writes, String(columns)).toEqual(["x\n"]);
    }
  });

  it("stops drawing when the terminal is resized to nothing, and clears what it drew first", () => {
    const out = fakeTty(40);
    const status = new StatusLine(out, { color: false, text: "Building" });
    vi.advanceTimersByTime(FRAME_MS);
    const before = out.writes.length;
    out.columns = 0;
    vi.advanceTimersByTime(FRAME_MS);
    expect(out.writes.slice(before)).toEqual([`\r${" ".repeat("⠋ Building".length)}\r`]);
    vi.advanceTimersByTime(100 * FRAME_MS);
    expect(out.writes.length).toBe(before + 1);
    status.close();
  });
});
