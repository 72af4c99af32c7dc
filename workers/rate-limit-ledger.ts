/**
 * What this isolate remembers of its request budgets, so most requests need not wait for the
 * rate-limiting binding (docs/decisions/0025-charging-budgets-behind.md). A budget the binding
 * allowed within the last window is charged *behind* the request (the `limit()` call runs in
 * `waitUntil`), at most `maxPending` at a time per budget; a budget it refused is refused here,
 * without a call, until the window has passed; anything else (a budget this isolate has not
 * seen allowed lately, or too many unconfirmed charges) is charged *first*, as before. So a
 * budget overshoots by at most `maxPending` requests per isolate, and a spent one is refused
 * from memory. Pure: no bindings, the clock is passed in.
 */

/** How to treat the next request against one budget. */
export type BudgetDecision = "refuse" | "charge-first" | "charge-behind";

type Entry = { allowedAtMs: number; spentUntilMs: number; pending: number };

/** Options of a `BudgetLedger`. */
export type BudgetLedgerOptions = {
  /** The binding's window (wrangler.toml `simple.period`), in milliseconds. */
  periodMs: number;
  /** Unconfirmed charges per budget before the next request waits for the binding again. */
  maxPending: number;
  /** Budgets remembered; the oldest is forgotten first (it then starts over with `charge-first`). */
  maxEntries: number;
};

/** Per-isolate memory of which budgets were lately allowed or spent. */
export class BudgetLedger {
  readonly #entries = new Map<string, Entry>();
  readonly #options: BudgetLedgerOptions;

  constructor(options: BudgetLedgerOptions) {
    this.#options = options;
  }

  /** How the next request against `key` is charged at `nowMs`. */
  decide(key: string, nowMs: number): BudgetDecision {
    const entry = this.#entries.get(key);
    if (!entry) return "charge-first";
    if (entry.spentUntilMs > nowMs) return "refuse";
    const allowedLately = nowMs - entry.allowedAtMs < this.#options.periodMs;
    return allowedLately && entry.pending < this.#options.maxPending ? "charge-behind" : "charge-first";
  }

  /** Notes a `limit()` call on `key` that has not answered yet. */
  begin(key: string): void {
    this.#entryOf(key).pending++;
  }

  /**
   * Notes the binding's answer to a call `begin` announced: `true` allowed, `false` spent (refused
   * here until a window has passed), `null` the limiter failed (no news; the request went through).
   */
  settle(key: string, allowed: boolean | null, nowMs: number): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    entry.pending = Math.max(0, entry.pending - 1);
    if (allowed === true) entry.allowedAtMs = Math.max(entry.allowedAtMs, nowMs);
    if (allowed === false) entry.spentUntilMs = nowMs + this.#options.periodMs;
  }

  #entryOf(key: string): Entry {
    let entry = this.#entries.get(key);
    if (!entry) {
      if (this.#entries.size >= this.#options.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
      entry = { allowedAtMs: Number.NEGATIVE_INFINITY, spentUntilMs: 0, pending: 0 };
      this.#entries.set(key, entry);
    }
    return entry;
  }
}
