// Request budgets: which budgets a request draws from, and the 429 + Retry-After answer in the
// one error shape (the registry's own format under /v2), through the Worker's real app with
// deterministic stand-in limiters; plus the real binding from wrangler.toml.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { errorResponse, sheddingError } from "../../workers/errors.ts";
import worker from "../../workers/index.ts";
import {
  credentialDigest,
  firstSpentBudget,
  type Limiter,
  MAX_UNCONFIRMED_CHARGES,
  presentedCredential,
  RATE_LIMIT_PERIOD_SECONDS,
  rateLimitCharges,
} from "../../workers/rate-limit.ts";
import { newTenant } from "./periphery-helpers.ts";

/** A limiter that allows `allowed` calls per key, and records every key it saw. */
function limiter(allowed: number): Limiter & { keys: string[] } {
  const counts = new Map<string, number>();
  const keys: string[] = [];
  return {
    keys,
    async limit({ key }) {
      keys.push(key);
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      return { success: n <= allowed };
    },
  };
}

async function send(path: string, limiters: Record<string, Limiter>, init: RequestInit & { ip?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.ip) headers.set("cf-connecting-ip", init.ip);
  const ctx = createExecutionContext();
  const response = await worker.fetch!(
    new Request(`https://kiln.test${path}`, { ...init, headers }) as never,
    { ...env, ...limiters } as Env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

describe("rateLimitCharges", () => {
  it("charges the client address, and the credential when one is presented", () => {
    expect(rateLimitCharges("/v1/images", "203.0.113.7", null)).toEqual([
      { binding: "RATE_LIMIT_IP", key: "ip:203.0.113.7", scope: "client" },
    ]);
    expect(rateLimitCharges("/v1/images", "203.0.113.7", "abc")).toEqual([
      { binding: "RATE_LIMIT_IP", key: "ip:203.0.113.7", scope: "client" },
      { binding: "RATE_LIMIT_TOKEN", key: "cred:abc", scope: "token" },
    ]);
  });

  it("charges runner routes to the larger per-machine budget only", () => {
    expect(rateLimitCharges("/v1/runner/events", "198.51.100.2", "abc")).toEqual([
      { binding: "RATE_LIMIT_RUNNER", key: "runner:198.51.100.2", scope: "runner" },
    ]);
  });

  it("never charges the liveness probe, and no address budget without an address", () => {
    expect(rateLimitCharges("/healthz", "203.0.113.7", "abc")).toEqual([]);
    expect(rateLimitCharges("/v1/images", null, null)).toEqual([]);
    expect(rateLimitCharges("/v1/images", null, "abc")).toEqual([{ binding: "RATE_LIMIT_TOKEN", key: "cred:abc", scope: "token" }]);
  });

  it("keys credentials by a digest that does not contain them", async () => {
    expect(presentedCredential("Bearer kiln_api_x")).toBe("kiln_api_x");
    expect(presentedCredential("Basic dTpw")).toBe("dTpw");
    expect(presentedCredential("Token x")).toBeNull();
    const digest = await credentialDigest("kiln_api_secret");
    expect(digest).toMatch(/^[0-9a-f]{32}$/);
    expect(digest).toBe(await credentialDigest("kiln_api_secret"));
    expect(digest).not.toBe(await credentialDigest("kiln_api_other"));
  });

  it("fails open when a limiter is missing or throws", async () => {
    const broken: Limiter = { limit: () => Promise.reject(new Error("limiter down")) };
    const charges = rateLimitCharges("/v1/images", "203.0.113.7", "abc");
    expect(await firstSpentBudget({}, charges)).toBeNull();
    expect(await firstSpentBudget({ RATE_LIMIT_IP: broken, RATE_LIMIT_TOKEN: broken }, charges)).toBeNull();
  });
});

describe("429 through the Worker", () => {
  it("answers 429 rate_limited with Retry-After once the address budget is spent", async () => {
    const limiters = { RATE_LIMIT_IP: limiter(2), RATE_LIMIT_TOKEN: limiter(100) };
    expect((await send("/openapi.json", limiters, { ip: "203.0.113.9" })).status).toBe(200);
    expect((await send("/openapi.json", limiters, { ip: "203.0.113.9" })).status).toBe(200);
    // Charged behind the request (decision 0025): the binding refuses this one's charge after it went through.
    expect((await send("/openapi.json", limiters, { ip: "203.0.113.9" })).status).toBe(200);
    const refused = await send("/openapi.json", limiters, { ip: "203.0.113.9", headers: { "x-request-id": "rl-test-1" } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe(String(RATE_LIMIT_PERIOD_SECONDS));
    expect(refused.headers.get("x-request-id")).toBe("rl-test-1");
    expect(await refused.json()).toEqual({
      error: {
        code: "rate_limited",
        message: expect.stringContaining("client address"),
        details: { scope: "client", retryAfterSeconds: RATE_LIMIT_PERIOD_SECONDS },
      },
    });
    // Refused from this isolate's memory, without another call to the binding.
    expect(limiters.RATE_LIMIT_IP.keys.filter((k) => k === "ip:203.0.113.9")).toHaveLength(3);
    // Another address has its own budget; the liveness probe is never refused.
    expect((await send("/openapi.json", limiters, { ip: "203.0.113.10" })).status).toBe(200);
    expect((await send("/healthz", limiters, { ip: "203.0.113.9" })).status).toBe(200);
  });

  it("refuses a spent token budget before the route runs, whatever the address", async () => {
    // A tenant's token, not the admin's: this isolate remembers the spent budget for a window, and the other tests need the admin's.
    const { token } = await newTenant(["images:read"]);
    const limiters = { RATE_LIMIT_IP: limiter(100), RATE_LIMIT_TOKEN: limiter(1) };
    const auth = { authorization: `Bearer ${token}` };
    expect((await send("/v1/tags", limiters, { ip: "192.0.2.1", headers: auth })).status).toBe(200);
    // The token was allowed lately: its next charge runs behind this request, and is refused.
    expect((await send("/v1/tags", limiters, { ip: "192.0.2.2", headers: auth })).status).toBe(200);
    const refused = await send("/v1/tags", limiters, { ip: "192.0.2.5", headers: auth });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { details: { scope: string } } }).error.details.scope).toBe("token");
    expect(limiters.RATE_LIMIT_TOKEN.keys.every((k) => k.startsWith("cred:") && !k.includes(token))).toBe(true);
  });

  it("holds a budget under a burst: at most MAX_UNCONFIRMED_CHARGES requests beyond it go through", async () => {
    const limiters = { RATE_LIMIT_IP: limiter(5), RATE_LIMIT_TOKEN: limiter(1000) };
    const ip = "198.51.100.77";
    // A budget this isolate has not seen allowed is charged before the request, so a burst gets exactly the budget.
    const burst = await Promise.all(Array.from({ length: 12 }, () => send("/openapi.json", limiters, { ip })));
    expect(burst.filter((r) => r.status === 200)).toHaveLength(5);
    expect(burst.filter((r) => r.status === 429).every((r) => r.headers.get("retry-after") === String(RATE_LIMIT_PERIOD_SECONDS))).toBe(
      true,
    );
    // Concurrent requests against a budget allowed lately: the unconfirmed charges are capped per budget.
    const fresh = { RATE_LIMIT_IP: limiter(3), RATE_LIMIT_TOKEN: limiter(1000) };
    const other = "198.51.100.78";
    expect((await send("/openapi.json", fresh, { ip: other })).status).toBe(200);
    const wave = await Promise.all(Array.from({ length: 30 }, () => send("/openapi.json", fresh, { ip: other })));
    const through = wave.filter((r) => r.status === 200).length;
    expect(through).toBeGreaterThanOrEqual(2);
    expect(through).toBeLessThanOrEqual(2 + MAX_UNCONFIRMED_CHARGES);
    expect((await send("/openapi.json", fresh, { ip: other })).status).toBe(429);
  });

  it("answers a workspace over its registry budget with 429 TOOMANYREQUESTS and Retry-After", async () => {
    const tenant = await newTenant(["images:read", "images:write"]);
    const limiters = { RATE_LIMIT_IP: limiter(1000), RATE_LIMIT_TOKEN: limiter(2) };
    const headers = { authorization: `Basic ${btoa(`x:${tenant.token}`)}` };
    const path = `/v2/${tenant.workspace.name}/app/tags/list`;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await send(path, limiters, { ip: "192.0.2.60", headers })).status);
    // Two within the budget (404: no repository yet), one charged behind and refused by the binding, then 429.
    expect(statuses).toEqual([404, 404, 404, 429]);
    const refused = await send(path, limiters, { ip: "192.0.2.61", headers });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe(String(RATE_LIMIT_PERIOD_SECONDS));
    expect(((await refused.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("TOOMANYREQUESTS");
    // Another workspace's credential has its own budget.
    const other = await newTenant(["images:read"]);
    const theirs = await send(`/v2/${other.workspace.name}/app/tags/list`, limiters, {
      ip: "192.0.2.60",
      headers: { authorization: `Basic ${btoa(`x:${other.token}`)}` },
    });
    expect(theirs.status).toBe(404);
  });

  it("answers the registry's TOOMANYREQUESTS under /v2", async () => {
    const limiters = { RATE_LIMIT_IP: limiter(0), RATE_LIMIT_TOKEN: limiter(100) };
    const refused = await send("/v2/", limiters, { ip: "192.0.2.3" });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe(String(RATE_LIMIT_PERIOD_SECONDS));
    expect(refused.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
    const body = (await refused.json()) as { errors: { code: string }[] };
    expect(body.errors[0]!.code).toBe("TOOMANYREQUESTS");
  });

  it("charges runner events to the runner budget, not the client's", async () => {
    const limiters = { RATE_LIMIT_IP: limiter(0), RATE_LIMIT_TOKEN: limiter(0), RATE_LIMIT_RUNNER: limiter(0) };
    const refused = await send("/v1/runner/events", limiters, {
      ip: "192.0.2.4",
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { details: { scope: string } } }).error.details.scope).toBe("runner");
    expect(limiters.RATE_LIMIT_IP.keys).toEqual([]);
  });
});

describe("the configured binding", () => {
  it("is bound from wrangler.toml and counts a fresh key as allowed", async () => {
    for (const binding of [env.RATE_LIMIT_IP, env.RATE_LIMIT_TOKEN, env.RATE_LIMIT_RUNNER]) {
      expect(await binding.limit({ key: `test:${crypto.randomUUID()}` })).toEqual({ success: true });
    }
  });
});

describe("shedding platform overload", () => {
  it("answers an overloaded or reset Durable Object with 503 + Retry-After, never 500", async () => {
    const app = new Hono();
    app.get("/overloaded", () => {
      throw Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), { overloaded: true, retryable: false });
    });
    app.get("/reset", () => {
      throw Object.assign(new Error("Network connection lost."), { retryable: true });
    });
    app.get("/bug", () => {
      throw new TypeError("undefined is not a function");
    });
    app.onError(errorResponse);
    const overloaded = await app.request("/overloaded");
    expect(overloaded.status).toBe(503);
    expect(overloaded.headers.get("retry-after")).toBe("1");
    expect(await overloaded.json()).toEqual({ error: { code: "overloaded", message: "The server is overloaded; retry shortly." } });
    expect((await app.request("/reset")).status).toBe(503);
    expect((await app.request("/bug")).status).toBe(500);
    expect(sheddingError(new Error("plain"))).toBeNull();
  });
});
