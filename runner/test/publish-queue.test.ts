// The publish queue: one publish at a time in queue order, results handed on in that order,
// the first failure skips everything queued after it and aborts the signal builds listen to,
// and `settled()` never rejects.
import { describe, expect, it } from "vitest";
import { PublishQueue } from "../src/publish-queue.ts";

/** A promise with its resolve/reject exposed. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("PublishQueue", () => {
  it("runs one publish at a time, in queue order, and hands results on in that order", async () => {
    const queue = new PublishQueue<string>();
    const log: string[] = [];
    const first = deferred<string>();
    const second = deferred<string>();
    queue.add(
      () => (log.push("start 0"), first.promise),
      (r) => log.push(`done ${r}`),
    );
    queue.add(
      () => (log.push("start 1"), second.promise),
      (r) => log.push(`done ${r}`),
    );
    await tick();
    // The second publish does not start while the first runs, even if its result were ready.
    second.resolve("b");
    await tick();
    expect(log).toEqual(["start 0"]);
    first.resolve("a");
    await queue.settled();
    expect(log).toEqual(["start 0", "done a", "start 1", "done b"]);
    expect(queue.failure).toBeNull();
    expect(queue.signal.aborted).toBe(false);
  });

  it("stops at the first failure: aborts its signal with the error and skips what was queued after", async () => {
    const queue = new PublishQueue<string>();
    const results: string[] = [];
    const error = new Error("push refused");
    const failing = deferred<string>();
    let laterStarted = false;
    queue.add(
      () => Promise.resolve("a"),
      (r) => results.push(r),
    );
    queue.add(
      () => failing.promise,
      (r) => results.push(r),
    );
    queue.add(
      () => ((laterStarted = true), Promise.resolve("c")),
      (r) => results.push(r),
    );
    await tick();
    expect(queue.signal.aborted).toBe(false);
    failing.reject(error);
    await expect(queue.settled()).resolves.toBeUndefined();
    expect(results).toEqual(["a"]);
    expect(laterStarted).toBe(false);
    expect(queue.failure).toBe(error);
    expect(queue.signal.aborted).toBe(true);
    expect(queue.signal.reason).toBe(error);
    // Added after the failure: skipped as well.
    queue.add(
      () => ((laterStarted = true), Promise.resolve("d")),
      (r) => results.push(r),
    );
    await queue.settled();
    expect(laterStarted).toBe(false);
  });

  it("settles at once when nothing was queued", async () => {
    const queue = new PublishQueue<number>();
    await expect(queue.settled()).resolves.toBeUndefined();
  });
});
