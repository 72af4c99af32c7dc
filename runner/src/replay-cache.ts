/**
 * Remembers the `webhook-id`s of accepted dispatches for longer than the ±5 minute
 * timestamp tolerance, so a captured request replayed within the window is refused and one
 * replayed later is refused for its stale timestamp. Never evicts a live id: when full it
 * reports so, and the caller refuses new dispatches instead of reopening a replay window.
 */

/** Seen message ids with expiry. */
export class ReplayCache {
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #seen = new Map<string, number>();
  readonly #now: () => number;

  constructor(windowMs = 10 * 60 * 1000, maxEntries = 100_000, now: () => number = Date.now) {
    this.#windowMs = windowMs;
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  /** Records `id`; returns "replay" if it was seen within the window, "full" if no room is left. */
  check(id: string): "fresh" | "replay" | "full" {
    const now = this.#now();
    this.#sweep(now);
    const expires = this.#seen.get(id);
    if (expires !== undefined && expires > now) return "replay";
    if (this.#seen.size >= this.#maxEntries) return "full";
    this.#seen.set(id, now + this.#windowMs);
    return "fresh";
  }

  #sweep(now: number): void {
    // Insertion order is expiry order (constant window), so expired ids are at the front.
    for (const [id, expires] of this.#seen) {
      if (expires > now) break;
      this.#seen.delete(id);
    }
  }
}
