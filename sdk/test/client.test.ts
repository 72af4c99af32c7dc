import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { backoffMs, KilnClient } from "../src/client.ts";
import {
  APIConnectionError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  InternalServerError,
  NotFoundAPIError,
  RateLimitError,
} from "../src/errors.ts";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;
const servers: http.Server[] = [];

async function serve(handler: Handler): Promise<{ url: string; requests: http.IncomingMessage[] }> {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function error(res: http.ServerResponse, status: number, code: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", "x-request-id": "req-1", ...headers });
  res.end(JSON.stringify({ error: { code, message: `failed with ${code}` } }));
}

describe("KilnClient", () => {
  it("sends the token, a request id and percent-encoded path segments", async () => {
    const { url, requests } = await serve((_req, res) => res.end(JSON.stringify({ ok: true })));
    const client = new KilnClient({ serverUrl: url, token: "kiln_api_x" });
    expect(await client.json("GET", ["v1", "images", "a/b?c"])).toEqual({ ok: true });
    expect(requests[0]!.url).toBe("/v1/images/a%2Fb%3Fc");
    expect(requests[0]!.headers.authorization).toBe("Bearer kiln_api_x");
    expect(requests[0]!.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("retries 503 and 429 honouring Retry-After, then succeeds", async () => {
    const { url, requests } = await serve((_req, res, n) => {
      if (n === 1) return error(res, 503, "unavailable", { "retry-after": "0" });
      if (n === 2) return error(res, 429, "rate_limited", { "retry-after": "0" });
      res.end(JSON.stringify({ done: n }));
    });
    expect(await new KilnClient({ serverUrl: url }).json("POST", ["v1", "images"], { json: { a: 1 } })).toEqual({ done: 3 });
    expect(requests).toHaveLength(3);
  });

  it("never retries 409 and maps statuses to classes with the request id", async () => {
    const cases: [number, string, unknown][] = [
      [409, "stale_attempt", ConflictError],
      [400, "invalid_request", BadRequestError],
      [401, "unauthorized", AuthenticationError],
      [404, "not_found", NotFoundAPIError],
    ];
    for (const [status, code, Class] of cases) {
      const { url, requests } = await serve((_req, res) => error(res, status, code));
      const call = new KilnClient({ serverUrl: url }).request("GET", ["x"]);
      await expect(call).rejects.toBeInstanceOf(Class);
      await expect(new KilnClient({ serverUrl: url }).request("GET", ["x"])).rejects.toMatchObject({ status, code, requestId: "req-1" });
      expect(requests).toHaveLength(2);
    }
  });

  it("gives up after maxRetries on persistent 5xx and 429", async () => {
    const { url, requests } = await serve((_req, res) => error(res, 500, "internal", { "retry-after": "0" }));
    await expect(new KilnClient({ serverUrl: url, maxRetries: 2 }).request("GET", ["x"])).rejects.toBeInstanceOf(InternalServerError);
    expect(requests).toHaveLength(3);
    const limited = await serve((_req, res) => error(res, 429, "rate_limited", { "retry-after": "0" }));
    await expect(new KilnClient({ serverUrl: limited.url, maxRetries: 1 }).request("GET", ["x"])).rejects.toBeInstanceOf(RateLimitError);
  });

  it("reports an unreachable server as APIConnectionError after retrying", async () => {
    const { url } = await serve(() => {});
    await new Promise((r) => servers.pop()!.close(r));
    let calls = 0;
    const counting: typeof fetch = (...args) => {
      calls++;
      return fetch(...args);
    };
    await expect(new KilnClient({ serverUrl: url, maxRetries: 1, fetch: counting }).request("GET", ["x"])).rejects.toBeInstanceOf(
      APIConnectionError,
    );
    expect(calls).toBe(2);
  });

  it("rejects a malformed server URL before any request", () => {
    expect(() => new KilnClient({ serverUrl: "not a url" })).toThrow("Invalid Kiln server URL");
  });
});

describe("backoffMs", () => {
  it("honours Retry-After in seconds and as an HTTP date", () => {
    expect(backoffMs(0, "2")).toBe(2000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(backoffMs(0, "Thu, 01 Jan 2026 00:00:03 GMT", now)).toBe(3000);
  });

  it("grows exponentially with jitter and a cap", () => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const ceiling = Math.min(8000, 500 * 2 ** attempt);
      const delay = backoffMs(attempt, null);
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delay).toBeLessThanOrEqual(ceiling);
    }
  });
});
