// The per-isolate cache of token resolutions used by POST /v1/images: successes only, so a new
// token works at once and a bad one is refused every time.
import { describe, expect, it } from "vitest";
import { clearTokenCache, TOKEN_CACHE_TTL_MS } from "../../workers/auth/token-cache.ts";
import { chain, newTenant, submitImage } from "./helpers.ts";

describe("authenticateCached", () => {
  it("authenticates new tokens at once, refuses bad ones every time, and caches successes briefly", async () => {
    clearTokenCache();
    expect(TOKEN_CACHE_TTL_MS).toBeLessThanOrEqual(10_000);
    const t = await newTenant();
    const layers = chain(1);
    expect((await submitImage("kiln_api_notARealTokenAtAll0000000000000000", layers)).status).toBe(401);
    const first = await submitImage(t.token, layers);
    expect(first.status).toBe(202);
    expect(first.headers.get("server-timing")).toMatch(/d1;desc="queries=\d+"/);
    // The repeat costs no token lookup: its total equals the handler's own statements.
    const again = await submitImage(t.token, layers);
    const [, total, handler] = /d1;desc="queries=(\d+)", d1-handler;desc="queries=(\d+)"/.exec(again.headers.get("server-timing")!)!;
    expect(total).toBe(handler);
    const reader = await newTenant(["images:read"]);
    expect((await submitImage(reader.token, layers)).status).toBe(403);
    expect((await submitImage(reader.token, layers)).status).toBe(403);
  });
});
