// `kiln doctor` against the real local stack: the Worker on wrangler dev (migrations applied,
// secrets set) and a real runner dispatch endpoint (runner/src/server.ts) registered as a
// fleet. A healthy deployment passes every check; a fleet with the wrong secret, a wrong
// token and an unreachable server each fail with their own exit code and a fix.

import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { newWebhookSecret } from "@kiln-build/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../runner/src/logger.ts";
import { createDispatchServer } from "../../runner/src/server.ts";
import { renderDoctorReport, runDoctor } from "../../sdk/src/cli/doctor.ts";
import { EXIT } from "../../sdk/src/cli/output.ts";
import { ADMIN_TOKEN, freePort, type Stack, startStack } from "./registry-harness.ts";

let stack: Stack;
let runner: Server;
let runnerUrl: string;
const runnerSecret = newWebhookSecret();

async function api(method: string, path: string, body: unknown, workspace?: string): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
  if (workspace) headers["x-kiln-workspace"] = workspace;
  const response = await fetch(`${stack.url}${path}`, { method, headers, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  stack = await startStack();
  runner = createDispatchServer({
    secrets: [runnerSecret],
    maxBodyBytes: 1024 * 1024,
    logger: silentLogger,
    // The doctor's probe is signed but is not a job: it must never get this far.
    dispatch: () => {
      throw new Error("the doctor's probe must not be dispatched");
    },
    capabilities: () => ({}),
    health: () => ({ ok: true, running: 0, queued: 0 }),
  });
  await new Promise<void>((resolve) => runner.listen(0, "127.0.0.1", resolve));
  runnerUrl = `http://127.0.0.1:${(runner.address() as AddressInfo).port}/v1/jobs`;
  await api("POST", "/v1/workspaces", { name: "doctor" });
  await api(
    "POST",
    "/v1/fleets",
    { name: "local", url: runnerUrl, gpuTypes: [], maxConcurrentBuilds: 1, signingSecret: runnerSecret },
    "doctor",
  );
}, 240_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (runner ? runner.close(() => resolve()) : resolve()));
  await stack?.stop();
});

describe("kiln doctor against a local deployment", () => {
  it("passes every check of a healthy deployment, with an admin token", async () => {
    const result = await runDoctor({ serverUrl: stack.url, token: ADMIN_TOKEN });
    const report = renderDoctorReport(result.serverUrl, result.checks);
    expect(result.exitCode, report).toBe(EXIT.ok);
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ["reachable", true],
      ["token", true],
      ["migrations", true],
      ["secrets", true],
      ["bindings", true],
      ["fleet local", true],
      ["registry", true],
    ]);
    expect(report).toContain("No problems found.");
  }, 60_000);

  it("fails a fleet whose runner has another secret, saying how to fix it", async () => {
    await api(
      "POST",
      "/v1/fleets",
      { name: "wrong-secret", url: runnerUrl, gpuTypes: [], maxConcurrentBuilds: 1, signingSecret: newWebhookSecret() },
      "doctor",
    );
    const result = await runDoctor({ serverUrl: stack.url, token: ADMIN_TOKEN, workspace: "doctor" });
    expect(result.exitCode).toBe(EXIT.failure);
    const bad = result.checks.find((c) => c.name === "fleet wrong-secret")!;
    expect(bad).toMatchObject({ ok: false, summary: "signature refused" });
    expect(bad.fix).toContain("rotateSigningSecret");
    expect(result.checks.find((c) => c.name === "fleet local")!.ok).toBe(true);
    const report = renderDoctorReport(result.serverUrl, result.checks);
    expect(report).toContain("What happened: fleet wrong-secret");
    expect(report).toContain("How to fix:");
    expect(report).toContain("1 problem found.");
  }, 60_000);

  it("exits 4 when the token is refused and 6 when the server is unreachable", async () => {
    const refused = await runDoctor({ serverUrl: stack.url, token: "kiln_api_00000000000000000000000000000000000000" });
    expect(refused.exitCode).toBe(EXIT.auth);
    expect(refused.checks.at(-1)).toMatchObject({ name: "token", ok: false });
    const gone = await runDoctor({ serverUrl: `http://127.0.0.1:${await freePort()}`, token: ADMIN_TOKEN });
    expect(gone.exitCode).toBe(EXIT.unreachable);
    expect(gone.checks).toHaveLength(1);
    expect(gone.checks[0]!.fix).toContain("npm start");
  }, 60_000);
});
