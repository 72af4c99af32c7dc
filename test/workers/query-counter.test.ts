// The D1 statement counter behind the Server-Timing header: every execution counts, a batch
// counts each statement, and wrapped statements still work when batched.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { countingD1 } from "../../workers/db/query-counter.ts";

describe("countingD1", () => {
  it("counts first/all/run/raw and each statement of a batch", async () => {
    const { db, count } = countingD1(env.DB);
    expect(await db.prepare("SELECT 1 AS one").first()).toEqual({ one: 1 });
    await db.prepare("SELECT ? AS v").bind(2).all();
    await db.prepare("SELECT 3").raw();
    expect(count()).toBe(3);
    const results = await db.batch([db.prepare("SELECT 4 AS v"), db.prepare("SELECT ? AS v").bind(5)]);
    expect(results.map((r) => r.results)).toEqual([[{ v: 4 }], [{ v: 5 }]]);
    expect(count()).toBe(5);
  });
});
