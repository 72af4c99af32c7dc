/**
 * The dispatch queue: at most `concurrency` jobs build at once, at most `maxQueued` wait;
 * beyond that a dispatch is refused so the orchestrator can place it elsewhere. Attempts
 * already seen (running, queued or recently finished) are recognised, so a re-delivered
 * dispatch is acknowledged without building twice.
 */

/** What happened to an offered job. */
export type OfferResult = "queued" | "duplicate" | "full";

/** FIFO work queue with a concurrency limit. */
export class JobQueue {
  readonly #concurrency: number;
  readonly #maxQueued: number;
  readonly #waiting: { id: string; task: () => Promise<void> }[] = [];
  readonly #seen = new Set<string>();
  readonly #idle: (() => void)[] = [];
  #running = 0;

  constructor(concurrency: number, maxQueued: number) {
    this.#concurrency = concurrency;
    this.#maxQueued = maxQueued;
  }

  /** Jobs building now. */
  get running(): number {
    return this.#running;
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Offers a job; `task` runs when a slot is free. */
  offer(id: string, task: () => Promise<void>): OfferResult {
    if (this.#seen.has(id)) return "duplicate";
    if (this.#running >= this.#concurrency && this.#waiting.length >= this.#maxQueued) return "full";
    this.#remember(id);
    this.#waiting.push({ id, task });
    this.#next();
    return "queued";
  }

  /** Takes a job out of the queue before it starts; false if it already started (or is unknown). */
  remove(id: string): boolean {
    const index = this.#waiting.findIndex((w) => w.id === id);
    if (index === -1) return false;
    this.#waiting.splice(index, 1);
    if (this.#running === 0 && this.#waiting.length === 0) for (const wake of this.#idle.splice(0)) wake();
    return true;
  }

  /** Resolves when nothing runs or waits. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #next(): void {
    while (this.#running < this.#concurrency && this.#waiting.length > 0) {
      const { task } = this.#waiting.shift()!;
      this.#running++;
      void task()
        .catch(() => undefined)
        .finally(() => {
          this.#running--;
          this.#next();
          if (this.#running === 0 && this.#waiting.length === 0) for (const wake of this.#idle.splice(0)) wake();
        });
    }
  }

  #remember(id: string): void {
    this.#seen.add(id);
    // Bounded memory: forget the oldest attempts (the orchestrator gives up on them long before).
    if (this.#seen.size > 10_000) this.#seen.delete(this.#seen.values().next().value!);
  }
}
