// `npm start` keeps its local runner up (scripts/local-stack.ts): the restart policy (1 s,
// doubling to 30 s, back to 1 s after a minute of uptime) and the supervisor that applies it
// to a real child process and says so on the console.
import { describe, expect, it } from "vitest";
import { type Child, restartDelayMs, startChild, superviseChild } from "../../scripts/local-stack.ts";

describe("restartDelayMs", () => {
  it("starts at 1 s and doubles after each quick exit, up to 30 s", () => {
    const delays: number[] = [];
    let previous: number | null = null;
    for (let i = 0; i < 8; i++) {
      previous = restartDelayMs(previous, 5_000);
      delays.push(previous);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });

  it("starts over after a minute of uptime", () => {
    expect(restartDelayMs(30_000, 59_999)).toBe(30_000);
    expect(restartDelayMs(30_000, 60_000)).toBe(1_000);
    expect(restartDelayMs(8_000, 10 * 60_000)).toBe(1_000);
  });
});

describe("superviseChild", () => {
  it("restarts a child that exits, after the backoff, and says so", async () => {
    const said: string[] = [];
    const started: Child[] = [];
    let stopping = false;
    const start = () => startChild("runner", "sh", ["-c", "echo boom; exit 3"], { cwd: process.cwd(), env: process.env, echo: false });
    const first = start();
    const restarted = new Promise<Child>((resolve) =>
      superviseChild(first, {
        start,
        onStart: (child) => {
          started.push(child);
          if (started.length === 2) resolve(child);
        },
        stopping: () => stopping,
        say: (message) => said.push(message),
      }),
    );
    const begun = Date.now();
    const second = await restarted;
    stopping = true;
    await second.stop(1_000);
    // Exits after 1 s, then 2 s: the second restart waited the doubled delay.
    expect(Date.now() - begun).toBeGreaterThanOrEqual(3_000);
    expect(said[0]).toMatch(/^runner exited with code 3; restarting in 1 s\. Its last output:\n {2}boom$/);
    expect(said[1]).toMatch(/^runner exited with code 3; restarting in 2 s/);
  }, 20_000);
});
