// Issue "Tenant isolation and trust", items 4 and 5, on the real stack (wrangler dev, a real
// `kiln-runner serve` with buildah): a build's scoped job token still pulls its base and pushes
// its layers; the token of a dispatch captured by a fleet URL cannot overwrite the user's base
// image or open repositories; and a token with fleets:write and images:write (no secrets:read)
// cannot get a secret's value to its own URL, while a fleet an admin trusted receives it.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { newWebhookSecret } from "@kiln-build/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import { KilnClient } from "../../sdk/src/client.ts";
import { Image, Secret } from "../../sdk/src/index.ts";
import {
  disableFleet,
  type LocalRunner,
  newWorkspace,
  pushBaseImage,
  requireE2eTools,
  type StackInfo,
  sharedStack,
  startLocalRunner,
  type Tenant,
} from "../node/e2e-stack.ts";

const VALUE = "real-stack-secret-value-must-not-leak";
let stack: StackInfo;
let tenant: Tenant;
let runner: LocalRunner;
let base: string;
let sink: { server: Server; url: string; bodies: string[] };

/** A fleet URL that accepts every job and keeps its body: what an attacker's endpoint sees. */
async function captureServer(): Promise<typeof sink> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      bodies.push(body);
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/jobs`, bodies };
}

beforeAll(async () => {
  requireE2eTools("buildah", "busybox");
  stack = await sharedStack();
  tenant = await newWorkspace(stack, "sec-trust");
  sink = await captureServer();
  [runner, base] = await Promise.all([
    startLocalRunner(stack, tenant),
    busyboxRootfs().then((rootfs) => pushBaseImage(stack, tenant, rootfs, "base:busybox")),
  ]);
  await tenant.client.json("PUT", ["v1", "secrets", "db"], { json: { values: { DB_TOKEN: VALUE } } });
}, 600_000);

afterAll(async () => {
  await runner?.stop();
  await new Promise((resolve) => sink?.server.close(resolve));
}, 120_000);

const registry = (method: string, path: string, password: string, init: RequestInit = {}) =>
  fetch(`${stack.url}/v2/${path}`, {
    ...init,
    method,
    headers: { authorization: `Basic ${Buffer.from(`kiln-job:${password}`).toString("base64")}`, ...(init.headers ?? {}) },
  });

/** A root layer spec on `base` as the SDK would submit it. */
const rootLayer = (run: string, secrets: string[] = []) => ({
  dockerfileCommands: [`FROM ${base}`, `RUN ${run}`],
  context: null,
  secrets,
  gpu: null,
  buildArgs: {},
  registryAuth: null,
  buildFunction: null,
  pythonStandalone: null,
  forceBuild: false,
});

async function submit(client: KilnClient, run: string, secrets: string[] = []): Promise<string> {
  const image = await client.json<{ buildId: string }>("POST", ["v1", "images"], {
    json: { builderVersion: "2025.06", layers: [rootLayer(run, secrets)] },
  });
  return image.buildId;
}

async function finished(client: KilnClient, buildId: string): Promise<{ status: string; failure: { message: string } | null }> {
  for (let i = 0; i < 240; i++) {
    const build = await client.json<{ status: string; failure: { message: string } | null }>("GET", ["v1", "builds", buildId]);
    if (["succeeded", "failed", "cancelled", "timeout"].includes(build.status)) return build;
    await sleep(250);
  }
  throw new Error(`build ${buildId} did not finish`);
}

async function registerSink(client: KilnClient, name: string): Promise<string> {
  const fleet = await client.json<{ id: string }>("POST", ["v1", "fleets"], {
    json: { name, url: sink.url, maxConcurrentBuilds: 4, signingSecret: newWebhookSecret() },
  });
  return fleet.id;
}

describe("tenant isolation and trust on the real stack", { timeout: 600_000 }, () => {
  it("builds on a base image of the built-in registry with the scoped job token", async () => {
    const built = await Image.fromRegistry(base)
      .runCommands("echo scoped-one > /etc/one")
      .runCommands("echo scoped-two > /etc/two")
      .build({ client: tenant.client, logs: false });
    expect(built.reference).toBe(`${stack.host}/${tenant.workspace}/layers@${built.digest}`);
  });

  it("a captured job token cannot replace the user's base image or open repositories", async () => {
    await disableFleet(tenant, runner.fleetId);
    const captureFleet = await registerSink(tenant.client, "capture");
    const before = sink.bodies.length;
    const buildId = await submit(tenant.client, `echo captured-${Date.now()}`);
    for (let i = 0; i < 120 && sink.bodies.length === before; i++) await sleep(250);
    const job = JSON.parse(sink.bodies.at(-1)!) as { jobId: string; registry: { credentials: { password: string } } };
    expect(job.jobId).toBe(buildId);
    const token = job.registry.credentials.password;
    const repo = `${tenant.workspace}/base`;
    const manifest = await registry("GET", `${repo}/manifests/busybox`, token, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    expect(manifest.status).toBe(200);
    const bytes = Buffer.from(await manifest.arrayBuffer());
    const type = manifest.headers.get("content-type")!;
    // The reported attack, replayed with the real token: it used to answer 201.
    const put = await registry("PUT", `${repo}/manifests/busybox`, token, { body: bytes, headers: { "content-type": type } });
    expect(put.status).toBe(403);
    expect(
      (await registry("PUT", `${tenant.workspace}/layers/manifests/latest`, token, { body: bytes, headers: { "content-type": type } }))
        .status,
    ).toBe(403);
    expect((await registry("POST", `${tenant.workspace}/brand-new/blobs/uploads/`, token)).status).toBe(403);
    await tenant.client.json("POST", ["v1", "builds", buildId, "cancel"]).catch(() => undefined);
    await disableFleet(tenant, captureFleet);
  });

  it("fleets:write and images:write cannot get a secret to their URL; a fleet an admin trusted gets it", async () => {
    const created = await tenant.client.json<{ token: string }>("POST", ["v1", "tokens"], {
      json: { name: "attacker", scopes: ["fleets:read", "fleets:write", "images:read", "images:write"] },
    });
    const attacker = new KilnClient({ serverUrl: stack.url, token: created.token });
    await registerSink(attacker, "mine");
    await disableFleet(tenant, runner.fleetId);
    const before = sink.bodies.length;
    const buildId = await submit(attacker, `echo steal-${Date.now()}`, ["db"]);
    const failed = await finished(attacker, buildId);
    expect(failed.status).toBe("failed");
    expect(failed.failure!.message).toContain("secrets_need_trusted_fleet");
    expect(sink.bodies.length).toBe(before);
    for (const body of sink.bodies) expect(body).not.toContain(VALUE);

    // An admin trusts the real runner's fleet: the build with the secret runs there.
    const admin = new KilnClient({ serverUrl: stack.url, token: stack.adminToken });
    const trusted = await admin.json<{ trustedWithSecrets: boolean }>("PATCH", ["v1", "fleets", runner.fleetId], {
      json: { trustedWithSecrets: true, disabled: false },
    });
    expect(trusted.trustedWithSecrets).toBe(true);
    const built = await Image.fromRegistry(base)
      .runCommands('test -n "$DB_TOKEN" && echo secret-ok', { secrets: [Secret.fromName("db")] })
      .build({ client: tenant.client, logs: false });
    expect(built.digest).toMatch(/^sha256:/);
    for (const body of sink.bodies) expect(body).not.toContain(VALUE);
  });
});
