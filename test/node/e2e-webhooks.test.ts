// End to end on the real stack, busybox base: completion notifications. A receiver on loopback
// (allowed because the test stack runs with WEBHOOKS_ALLOW_PRIVATE, registry-harness.ts)
// subscribed with `kiln webhook add` gets a signed `build.succeeded` for a successful build and
// a `build.failed` for a failing one, both verified with the secret `add` printed; a receiver
// that answers 500 twice gets the third delivery (the stack's retry schedule is seconds apart),
// and `kiln webhook deliveries` shows the three attempts.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Image, ImageBuildError } from "../../sdk/src/index.ts";
import { useBusyboxWorkspace } from "./busybox-workspace.ts";

const KILN = path.join(path.resolve(import.meta.dirname, "../.."), "sdk/dist/cli/bin.js");
const fx = useBusyboxWorkspace("e2e-webhooks");

type Received = { path: string; headers: Record<string, string>; body: string; status: number };
const received: Received[] = [];
// Statuses each path answers in turn (the last repeats); 200 when unscripted.
const script: Record<string, number[]> = {};
let receiver: Server;
let receiverUrl: string;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const statuses = script[req.url ?? ""] ?? [200];
      const status = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
      received.push({ path: req.url ?? "", headers: req.headers as Record<string, string>, body, status });
      res.writeHead(status).end(status === 200 ? "ok" : "try again");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

/** Runs the CLI with the tenant's token and `--json`; resolves to the parsed output. */
function kilnJson<T>(args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILN, "--json", ...args], {
      env: { ...process.env, KILN_SERVER_URL: fx.stack.url, KILN_TOKEN: fx.tenant.token },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`kiln ${args.join(" ")} exited ${code}: ${err}`)),
    );
  });
}

/** Waits until `count` requests reached `path` (deliveries arrive from the object's alarm, in real time). */
async function requestsTo(path: string, count: number, timeoutMs = 60_000): Promise<Received[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = received.filter((r) => r.path === path);
    if (got.length >= count) return got;
    if (Date.now() > end)
      throw new Error(`${path} got ${got.length} of ${count} deliveries:\n${JSON.stringify(received, null, 1).slice(0, 3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const unique = () => Math.random().toString(36).slice(2, 10);

describe("webhooks on the real stack", { timeout: 600_000 }, () => {
  it("delivers signed build.succeeded and build.failed to a receiver on loopback", async () => {
    const sub = await kilnJson<{ id: string; secret: string }>([
      "webhook",
      "add",
      `${receiverUrl}/builds`,
      "--events",
      "build.succeeded,build.failed",
    ]);
    expect(sub.secret).toMatch(/^whsec_/);
    const built = await Image.fromRegistry(fx.base).runCommands(`echo ok-${unique()}`).build({ client: fx.tenant.client, logs: false });
    const failing = Image.fromRegistry(fx.base)
      .runCommands(`echo fail-${unique()} && exit 3`)
      .build({ client: fx.tenant.client, logs: false });
    const failure = await failing.catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ImageBuildError);
    const got = await requestsTo("/builds", 2);
    const events = got.map((r) => new Webhook(sub.secret).verify(r.body, r.headers) as any);
    const succeeded = events.find((e) => e.type === "build.succeeded");
    const failed = events.find((e) => e.type === "build.failed");
    expect(succeeded.data).toMatchObject({
      imageId: built.imageId,
      workspace: fx.tenant.workspace,
      status: "succeeded",
      failure: null,
      references: [expect.stringContaining(`/${fx.tenant.workspace}/layers@sha256:`)],
    });
    expect(failed.data).toMatchObject({ status: "failed", failure: { reason: "build", exitCode: 3 } });
    expect(failed.data.imageId).not.toBe(built.imageId);
    // A forged signature does not verify.
    expect(() => new Webhook(sub.secret).verify(got[0]!.body.replace("build.", "build!"), got[0]!.headers)).toThrow();
    const log = await kilnJson<{ state: string; attemptCount: number }[]>(["webhook", "deliveries", sub.id]);
    expect(log.map((d) => [d.state, d.attemptCount])).toEqual([
      ["delivered", 1],
      ["delivered", 1],
    ]);
    await kilnJson(["webhook", "rm", sub.id]);
  });

  it("retries a receiver that answers 500 twice and delivers the third attempt", async () => {
    script["/flaky"] = [500, 500, 200];
    const sub = await kilnJson<{ id: string; secret: string }>(["webhook", "add", `${receiverUrl}/flaky`, "--events", "build.succeeded"]);
    const built = await Image.fromRegistry(fx.base).runCommands(`echo flaky-${unique()}`).build({ client: fx.tenant.client, logs: false });
    const got = await requestsTo("/flaky", 3);
    expect(got.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(got.map((r) => r.headers["webhook-id"])).size).toBe(1);
    for (const r of got) expect((new Webhook(sub.secret).verify(r.body, r.headers) as any).data.imageId).toBe(built.imageId);
    // The object records the third attempt right after the receiver answered it.
    let log: { state: string; attempts: { statusCode: number }[] }[] = [];
    for (let i = 0; i < 50 && log[0]?.state !== "delivered"; i++) {
      log = await kilnJson(["webhook", "deliveries", sub.id]);
      if (log[0]?.state !== "delivered") await new Promise((r) => setTimeout(r, 200));
    }
    expect(log[0]).toMatchObject({ state: "delivered" });
    expect(log[0]!.attempts.map((a) => a.statusCode)).toEqual([500, 500, 200]);
  });
});
