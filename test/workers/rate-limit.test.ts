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
  presentedCredential,
  RATE_LIMIT_PERIOD_SECONDS,
  rateLimitCharges,
} from "../../workers/rate-limit.ts";
import { ADMIN } from "./periphery-helpers.ts";

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
    // Another address has its own budget; the liveness probe is never refused.
    expect((await send("/openapi.json", limiters, { ip: "203.0.113.10" })).status).toBe(200);
    expect((await send("/healthz", limiters, { ip: "203.0.113.9" })).status).toBe(200);
  });

  it("refuses a spent token budget before the route runs, whatever the address", async () => {
    const limiters = { RATE_LIMIT_IP: limiter(100), RATE_LIMIT_TOKEN: limiter(1) };
    const auth = { authorization: `Bearer ${ADMIN}` };
    expect((await send("/v1/workspaces", limiters, { ip: "192.0.2.1", headers: auth })).status).toBe(200);
    const refused = await send("/v1/workspaces", limiters, { ip: "192.0.2.2", headers: auth });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { details: { scope: string } } }).error.details.scope).toBe("token");
    expect(limiters.RATE_LIMIT_TOKEN.keys.every((k) => k.startsWith("cred:") && !k.includes(ADMIN))).toBe(true);
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
