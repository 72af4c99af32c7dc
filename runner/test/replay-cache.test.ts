// Replay protection: ids are remembered for the window, forgotten after it, and a full
// cache refuses instead of forgetting a live id.
import { describe, expect, it } from "vitest";
import { ReplayCache } from "../src/replay-cache.ts";

describe("ReplayCache", () => {
  it("refuses an id seen within the window and forgets it afterwards", () => {
    let now = 0;
    const cache = new ReplayCache(1000, 10, () => now);
    expect(cache.check("a")).toBe("fresh");
    now = 999;
    expect(cache.check("a")).toBe("replay");
    now = 1001;
    expect(cache.check("a")).toBe("fresh");
  });

  it("reports full rather than evicting ids that are still live", () => {
    let now = 0;
    const cache = new ReplayCache(1000, 2, () => now);
    expect(cache.check("a")).toBe("fresh");
    expect(cache.check("b")).toBe("fresh");
    expect(cache.check("c")).toBe("full");
    expect(cache.check("a")).toBe("replay");
    now = 2000;
    expect(cache.check("c")).toBe("fresh");
  });
});
