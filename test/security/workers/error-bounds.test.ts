// Security review "Tenant isolation and trust", A: every error body is bounded (workers/errors.ts),
// whatever the validator or the request put in it: issue lists, long and non-ASCII messages,
// deep details. Pure checks of the bounding, plus the answers of routes anyone can call.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { boundedDetails, boundedMessage, MAX_DETAILS_BYTES, MAX_ISSUES, MAX_MESSAGE_CHARS } from "../../../workers/errors.ts";
import { call } from "../../workers/periphery-helpers.ts";

const bytesOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).byteLength;

describe("boundedDetails and boundedMessage", () => {
  it("keep any issue list within the budget, count what they drop, and never split a surrogate pair", () => {
    const issue = fc.record({
      code: fc.string({ maxLength: 80 }),
      path: fc.array(fc.oneof(fc.string({ unit: "grapheme", maxLength: 200 }), fc.integer()), { maxLength: 40 }),
      message: fc.string({ unit: "grapheme", maxLength: 3000 }),
      keys: fc.array(fc.string(), { maxLength: 50 }),
    });
    fc.assert(
      fc.property(fc.array(issue, { maxLength: 400 }), (issues) => {
        const bounded = boundedDetails(issues) as { code: string; path: unknown[]; message: string }[];
        expect(bytesOf(bounded)).toBeLessThanOrEqual(MAX_DETAILS_BYTES);
        expect(bounded.length).toBeLessThanOrEqual(MAX_ISSUES + 1);
        const last = bounded.at(-1);
        const listed = last?.code === "truncated" ? bounded.length - 1 : bounded.length;
        if (listed < issues.length) expect(last!.message).toContain(`${issues.length - listed} more issue`);
        for (const entry of bounded) {
          expect(Object.keys(entry).sort()).toEqual(["code", "message", "path"]);
          // encodeURIComponent throws on a lone surrogate: a cut inside a pair would show here.
          expect(() => encodeURIComponent(entry.message)).not.toThrow();
        }
      }),
      { seed: 1, numRuns: 200 },
    );
  });

  it("cut long messages and oversized structured details", () => {
    expect(boundedMessage("é".repeat(10_000)).length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
    expect(boundedMessage(`${"x".repeat(MAX_MESSAGE_CHARS - 2)}😀😀`)).toBe(`${"x".repeat(MAX_MESSAGE_CHARS - 2)}…`);
    const deep = { missing: Array(5000).fill(`sha256:${"a".repeat(64)}`), nested: { a: { b: { c: { d: "x".repeat(9000) } } } } };
    expect(bytesOf(boundedDetails(deep))).toBeLessThanOrEqual(MAX_DETAILS_BYTES);
    // Small details pass untouched.
    expect(boundedDetails({ missing: ["sha256:1"], partCount: 3 })).toEqual({ missing: ["sha256:1"], partCount: 3 });
  });
});

describe("answers to unauthenticated requests", () => {
  it("stay small, whatever the path or body", async () => {
    const long = "%F0%9F%98%80".repeat(3000);
    const requests: [string, string, BodyInit | undefined][] = [
      ["GET", `/v1/${long}`, undefined],
      ["GET", `/v2/${long}/manifests/latest`, undefined],
      ["GET", `/v2/${"a/".repeat(3000)}x/tags/list`, undefined],
      ["POST", "/v1/runner/events", JSON.stringify({ jobId: "bd-x", attemptId: "at-x", entries: Array(20_000).fill({ a: 1 }) })],
      ["POST", "/v1/workspaces", JSON.stringify(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i])))],
      ["GET", `/badges/${"w".repeat(5000)}/${"t".repeat(5000)}.svg`, undefined],
    ];
    for (const [method, path, body] of requests) {
      const response = await call(method, path, { token: null, body, headers: { "content-type": "application/json" } });
      const text = await response.text();
      expect(response.status, `${method} ${path.slice(0, 40)}`).toBeLessThan(500);
      expect(new TextEncoder().encode(text).byteLength, `${method} ${path.slice(0, 40)}`).toBeLessThan(8 * 1024);
    }
  });
});
