// The dispatch queue: concurrency limit, FIFO, refusal when full, duplicate attempts and
// removal of a waiting job.
import { describe, expect, it } from "vitest";
import { JobQueue } from "../src/job-queue.ts";

function gate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("JobQueue", () => {
  it("runs at most `concurrency` jobs, in order, and refuses beyond the queue limit", async () => {
    const queue = new JobQueue(2, 1);
    const started: string[] = [];
    const gates = new Map<string, ReturnType<typeof gate>>();
    const task = (id: string) => () => {
      started.push(id);
      const g = gate();
      gates.set(id, g);
      return g.promise;
    };
    expect(queue.offer("a", task("a"))).toBe("queued");
    expect(queue.offer("b", task("b"))).toBe("queued");
    expect(queue.offer("c", task("c"))).toBe("queued");
    expect(queue.offer("d", task("d"))).toBe("full");
    expect(started).toEqual(["a", "b"]);
    expect(queue.offer("a", task("a"))).toBe("duplicate");
    gates.get("a")!.open();
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toEqual(["a", "b", "c"]);
    gates.get("b")!.open();
    gates.get("c")!.open();
    await queue.idle();
    expect(queue.running).toBe(0);
  });

  it("takes a waiting job out of the queue", async () => {
    const queue = new JobQueue(1, 5);
    const g = gate();
    const ran: string[] = [];
    queue.offer("a", () => g.promise);
    queue.offer("b", async () => void ran.push("b"));
    expect(queue.remove("b")).toBe(true);
    expect(queue.remove("a")).toBe(false); // already running
    g.open();
    await queue.idle();
    expect(ran).toEqual([]);
  });
});
