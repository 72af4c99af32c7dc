// The per-isolate ledger of request budgets (decision 0025): which requests wait for the binding,
// which are charged behind, and which are refused from memory.
import { describe, expect, it } from "vitest";
import { BudgetLedger } from "../../workers/rate-limit-ledger.ts";

const ledger = () => new BudgetLedger({ periodMs: 10_000, maxPending: 2, maxEntries: 3 });

describe("BudgetLedger", () => {
  it("charges an unknown budget first, one allowed lately behind, and refuses a spent one until its window passes", () => {
    const l = ledger();
    expect(l.decide("k", 0)).toBe("charge-first");
    l.begin("k");
    l.settle("k", true, 5);
    expect(l.decide("k", 6)).toBe("charge-behind");
    expect(l.decide("k", 10_004)).toBe("charge-behind");
    // Not allowed within the last window: wait for the binding again.
    expect(l.decide("k", 10_005)).toBe("charge-first");
    l.begin("k");
    l.settle("k", false, 20_000);
    expect(l.decide("k", 20_001)).toBe("refuse");
    expect(l.decide("k", 29_999)).toBe("refuse");
    expect(l.decide("k", 30_000)).toBe("charge-first");
  });

  it("caps unconfirmed charges per budget", () => {
    const l = ledger();
    l.begin("k");
    l.settle("k", true, 0);
    l.begin("k");
    l.begin("k");
    expect(l.decide("k", 1)).toBe("charge-first");
    l.settle("k", true, 2);
    expect(l.decide("k", 3)).toBe("charge-behind");
  });

  it("learns nothing from a failed limiter, and forgets the oldest budget first", () => {
    const l = ledger();
    l.begin("k");
    l.settle("k", null, 0);
    expect(l.decide("k", 1)).toBe("charge-first");
    for (const key of ["a", "b", "c"]) {
      l.begin(key);
      l.settle(key, false, 0);
    }
    // "k" was the oldest of four: forgotten, so charged first again; the others stay refused.
    expect(l.decide("k", 1)).toBe("charge-first");
    expect(["a", "b", "c"].map((key) => l.decide(key, 1))).toEqual(["refuse", "refuse", "refuse"]);
  });

  it("keeps budgets apart", () => {
    const l = ledger();
    l.begin("a");
    l.settle("a", false, 0);
    expect(l.decide("a", 1)).toBe("refuse");
    expect(l.decide("b", 1)).toBe("charge-first");
  });
});
