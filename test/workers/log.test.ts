// Structured logs: one JSON object per line with the request id, taken from the SDK's
// x-request-id (or made), echoed on the response, carried into errors and explicit contexts,
// with credential-named fields redacted.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../workers/index.ts";
import { currentRequestId, formatLogLine, log, parseLogLevel, requestIdFrom } from "../../workers/log.ts";

afterEach(() => vi.restoreAllMocks());

// The Worker with LOG_LEVEL=info (deployed environments' level; wrangler.toml's local one is warn).
async function fetchAtInfo(path: string, headers: Record<string, string>): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch!(new Request(`https://kiln.test${path}`, { headers }), { ...env, LOG_LEVEL: "info" } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** Every JSON line written to the console while `fn` runs. */
async function captured(fn: () => Promise<unknown> | unknown): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  for (const method of ["log", "warn", "error"] as const)
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void lines.push(String(args[0])));
  await fn();
  vi.restoreAllMocks();
  return lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

describe("formatLogLine", () => {
  it("writes level, message, request id and fields as one JSON object", () => {
    const line = formatLogLine("info", "build created", { buildId: "bd-1", layers: 3 }, "req-1");
    expect(JSON.parse(line)).toEqual({ level: "info", msg: "build created", requestId: "req-1", buildId: "bd-1", layers: 3 });
    expect(line).not.toContain("\n");
  });

  it("redacts fields named like credentials and cuts long values", () => {
    const parsed = JSON.parse(
      formatLogLine(
        "warn",
        "x",
        { token: "kiln_api_abc", signingSecret: "whsec_x", authorization: "Bearer y", tokenId: "tk_1", detail: "a".repeat(5000) },
        null,
      ),
    );
    expect(parsed.token).toBe("[redacted]");
    expect(parsed.signingSecret).toBe("[redacted]");
    expect(parsed.authorization).toBe("[redacted]");
    expect(parsed.tokenId).toBe("tk_1");
    expect(parsed.detail.length).toBeLessThan(2100);
    expect(parsed).not.toHaveProperty("requestId");
  });

  it("keeps well-formed request ids and replaces anything that could forge a log line", () => {
    expect(requestIdFrom("0b9d2c1e-sdk-id")).toBe("0b9d2c1e-sdk-id");
    for (const bad of ["", "a\nb", 'x"y', "x".repeat(129), null, undefined]) expect(requestIdFrom(bad)).toMatch(/^[0-9a-f-]{36}$/);
    expect(parseLogLevel("warn")).toBe("warn");
    expect(parseLogLevel("loud")).toBe("info");
  });
});

describe("request ids through the Worker", () => {
  it("echoes the SDK's x-request-id and logs the request under it", async () => {
    const lines = await captured(async () => {
      const response = await fetchAtInfo("/openapi.json", { "x-request-id": "sdk-req-42" });
      expect(response.headers.get("x-request-id")).toBe("sdk-req-42");
      await response.arrayBuffer();
    });
    const access = lines.find((l) => l.msg === "request" && l.path === "/openapi.json");
    expect(access).toMatchObject({ level: "info", requestId: "sdk-req-42", method: "GET", status: 200 });
    expect(typeof access!.durationMs).toBe("number");
  });

  it("writes no access line at the local default level (warn) for a successful request", async () => {
    const lines = await captured(async () =>
      (await SELF.fetch("https://kiln.test/healthz", { headers: { "x-request-id": "quiet-1" } })).arrayBuffer(),
    );
    expect(lines.filter((l) => l.requestId === "quiet-1")).toEqual([]);
  });

  it("makes a request id when the client sent none or a malformed one", async () => {
    const none = await SELF.fetch("https://kiln.test/healthz");
    expect(none.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const forged = await SELF.fetch("https://kiln.test/healthz", { headers: { "x-request-id": 'a" "level":"error' } });
    expect(forged.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("logs a refused request with its status", async () => {
    const lines = await captured(async () => {
      const response = await fetchAtInfo("/v1/workspaces", { "x-request-id": "sdk-req-401" });
      expect(response.status).toBe(401);
      await response.arrayBuffer();
    });
    expect(lines.find((l) => l.msg === "request")).toMatchObject({ requestId: "sdk-req-401", status: 401, level: "info" });
  });
});

describe("outside a request (Durable Object RPC, alarms)", () => {
  it("has no current request id, and takes the one a line names explicitly", async () => {
    expect(currentRequestId()).toBeNull();
    const lines = await captured(() => log("warn", "shown", { requestId: "explicit-id", buildId: "bd-9" }));
    expect(lines).toEqual([{ level: "warn", msg: "shown", requestId: "explicit-id", buildId: "bd-9" }]);
  });
});
