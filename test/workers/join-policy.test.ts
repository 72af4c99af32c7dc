// Who builds a layer key, pure: join, cached, memoised failure, or a new build; claims and release.
import { describe, expect, it } from "vitest";
import { applyRelease, decideClaim, decideSubmit, type KeyState } from "../../durable-objects/join-policy.ts";

const empty: KeyState = { holder: null, pending: [], success: null, failure: null };
const normal = { mode: "normal" as const, freshFrom: 3, chainLength: 3 };
const force = { mode: "force" as const, freshFrom: 0, chainLength: 3 };
const ignore = { mode: "ignore" as const, freshFrom: 0, chainLength: 3 };
const success = { buildId: "bd-old", digest: "sha256:aa", reference: "r@sha256:aa", sizeBytes: 1 };

describe("decideSubmit", () => {
  it("creates a build when nothing is known, and joins it afterwards", () => {
    expect(decideSubmit(empty, normal, 0)).toEqual({ kind: "create" });
    const pending: KeyState = { ...empty, pending: [{ buildId: "bd-1", mode: "normal", freshFrom: 3 }] };
    expect(decideSubmit(pending, normal, 0)).toEqual({ kind: "join", buildId: "bd-1" });
  });

  it("answers from the cache and the holder for normal submissions", () => {
    expect(decideSubmit({ ...empty, success }, normal, 0)).toEqual({ kind: "cached", buildId: "bd-old" });
    expect(decideSubmit({ ...empty, holder: { buildId: "bd-h", mode: "normal" } }, normal, 0)).toEqual({ kind: "join", buildId: "bd-h" });
  });

  it("lets a normal submission join a forced build, but never an ignore-cache one", () => {
    expect(decideSubmit({ ...empty, holder: { buildId: "bd-f", mode: "force" } }, normal, 0)).toEqual({ kind: "join", buildId: "bd-f" });
    expect(decideSubmit({ ...empty, pending: [{ buildId: "bd-f", mode: "force", freshFrom: 0 }] }, normal, 0)).toEqual({
      kind: "join",
      buildId: "bd-f",
    });
    expect(
      decideSubmit(
        { ...empty, holder: { buildId: "bd-i", mode: "ignore" }, pending: [{ buildId: "bd-i", mode: "ignore", freshFrom: 0 }] },
        normal,
        0,
      ),
    ).toEqual({ kind: "create" });
  });

  it("never lets a forced submission join a build that started before it (or use the cache)", () => {
    expect(decideSubmit({ ...empty, success }, force, 0)).toEqual({ kind: "create" });
    const started: KeyState = {
      ...empty,
      holder: { buildId: "bd-f", mode: "force" },
      pending: [{ buildId: "bd-f", mode: "force", freshFrom: 0 }],
    };
    expect(decideSubmit(started, force, 0)).toEqual({ kind: "create" });
    expect(
      decideSubmit(
        { ...empty, holder: { buildId: "bd-n", mode: "normal" }, pending: [{ buildId: "bd-n", mode: "normal", freshFrom: 3 }] },
        force,
        0,
      ),
    ).toEqual({ kind: "create" });
  });

  it("coalesces forced submissions into a forced build that has not started and rebuilds at least as much", () => {
    const queued: KeyState = { ...empty, pending: [{ buildId: "bd-f", mode: "force", freshFrom: 1 }] };
    expect(decideSubmit(queued, { ...force, freshFrom: 2 }, 0)).toEqual({ kind: "join", buildId: "bd-f" });
    expect(decideSubmit(queued, { ...force, freshFrom: 0 }, 0)).toEqual({ kind: "create" });
  });

  it("keeps ignore-cache builds private", () => {
    expect(decideSubmit({ ...empty, success, holder: { buildId: "bd-n", mode: "normal" } }, ignore, 0)).toEqual({ kind: "create" });
    expect(decideSubmit({ ...empty, pending: [{ buildId: "bd-i", mode: "ignore", freshFrom: 0 }] }, ignore, 0)).toEqual({
      kind: "join",
      buildId: "bd-i",
    });
  });

  it("memoises a failure only within its window", () => {
    const failed: KeyState = { ...empty, failure: { buildId: "bd-x", untilMs: 1000 } };
    expect(decideSubmit(failed, normal, 999)).toEqual({ kind: "failed", buildId: "bd-x" });
    expect(decideSubmit(failed, normal, 1000)).toEqual({ kind: "create" });
    expect(decideSubmit(failed, force, 0)).toEqual({ kind: "create" });
  });
});

describe("decideClaim and applyRelease", () => {
  it("gives the key to one build at a time, idempotently", () => {
    expect(decideClaim(empty, { buildId: "a", mode: "normal", fresh: false }, 0)).toEqual({ kind: "claimed" });
    const held: KeyState = { ...empty, holder: { buildId: "a", mode: "normal" } };
    expect(decideClaim(held, { buildId: "a", mode: "normal", fresh: false }, 0)).toEqual({ kind: "claimed" });
    expect(decideClaim(held, { buildId: "b", mode: "force", fresh: true }, 0)).toEqual({ kind: "busy", holder: "a" });
  });

  it("answers a non-fresh claim from the cache or the memo, a fresh one never", () => {
    expect(decideClaim({ ...empty, success }, { buildId: "b", mode: "normal", fresh: false }, 0)).toMatchObject({
      kind: "cached",
      digest: "sha256:aa",
    });
    expect(decideClaim({ ...empty, success }, { buildId: "b", mode: "normal", fresh: true }, 0)).toEqual({ kind: "claimed" });
    expect(decideClaim({ ...empty, failure: { buildId: "x", untilMs: 10 } }, { buildId: "b", mode: "normal", fresh: false }, 5)).toEqual({
      kind: "failed",
      buildId: "x",
    });
  });

  it("caches successes of normal and forced builds only, memoises failures, and wakes waiters", () => {
    const held: KeyState = {
      ...empty,
      holder: { buildId: "a", mode: "normal" },
      pending: [{ buildId: "a", mode: "normal", freshFrom: 3 }],
    };
    const ok = applyRelease(held, "a", "normal", { kind: "succeeded", digest: "d", reference: "r", sizeBytes: 2 }, 0, 60_000);
    expect(ok.notifyWaiters).toBe(true);
    expect(ok.state).toEqual({
      holder: null,
      pending: [],
      success: { buildId: "a", digest: "d", reference: "r", sizeBytes: 2 },
      failure: null,
    });
    const ignored = applyRelease(
      { ...held, holder: { buildId: "a", mode: "ignore" } },
      "a",
      "ignore",
      { kind: "succeeded", digest: "d", reference: "r", sizeBytes: 2 },
      0,
      60_000,
    );
    expect(ignored.state.success).toBeNull();
    const failed = applyRelease(held, "a", "normal", { kind: "failed", memo: true }, 100, 60_000);
    expect(failed.state.failure).toEqual({ buildId: "a", untilMs: 60_100 });
  });

  it("lets a non-holder leave the pending list without touching the holder", () => {
    const s: KeyState = { ...empty, holder: { buildId: "a", mode: "normal" }, pending: [{ buildId: "b", mode: "normal", freshFrom: 3 }] };
    const r = applyRelease(s, "b", "normal", { kind: "abandoned" }, 0, 60_000);
    expect(r).toEqual({ state: { ...s, pending: [] }, notifyWaiters: false });
  });
});
