// Runner fleets: register (secret generated and shown once, or given and never echoed),
// encrypted at rest under the fleet id, list/read/update/disable, shared fleets, isolation,
// and the functions the build core dispatches with.
import { env } from "cloudflare:test";
import { newWebhookSecret, signWebhook, verifyWebhook } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { findFleet, fleetSigningSecret, listDispatchableFleets } from "../../workers/fleets.ts";
import { call, callJson, newTenant } from "./periphery-helpers.ts";

const fleetBody = { name: "gpu-pool", url: "https://runners.example.com/v1/jobs", gpuTypes: ["T4", "A100-80GB"], maxConcurrentBuilds: 4 };

describe("POST /v1/fleets", () => {
  it("generates a signing secret when none is given, returns it once, stores it encrypted", async () => {
    const { workspace, token } = await newTenant();
    const created = await callJson("POST", "/v1/fleets", 201, { token, json: fleetBody });
    expect(created).toMatchObject({
      ...fleetBody,
      id: expect.stringMatching(/^flt_/),
      shared: false,
      workspaceId: workspace.id,
      disabledAt: null,
    });
    expect(created.signingSecret).toMatch(/^whsec_/);
    const row = await env.DB.prepare("SELECT signing_secret_enc FROM fleets WHERE id = ?")
      .bind(created.id)
      .first<{ signing_secret_enc: string }>();
    expect(row!.signing_secret_enc).not.toContain(created.signingSecret.slice(6));
    const fleet = (await findFleet(env, created.id))!;
    expect(await fleetSigningSecret(env, fleet)).toBe(created.signingSecret);
    // Never again: reads and lists do not carry it.
    const read = await callJson("GET", `/v1/fleets/${created.id}`, 200, { token });
    expect(read.signingSecret).toBeUndefined();
    expect(JSON.stringify(await callJson("GET", "/v1/fleets", 200, { token }))).not.toContain(created.signingSecret);
  });

  it("keeps a given secret without echoing it, and the stored one signs verifiable webhooks", async () => {
    const { token } = await newTenant();
    const secret = newWebhookSecret();
    const created = await callJson("POST", "/v1/fleets", 201, { token, json: { ...fleetBody, signingSecret: secret } });
    expect(created.signingSecret).toBeUndefined();
    const opened = await fleetSigningSecret(env, (await findFleet(env, created.id))!);
    const headers = signWebhook(opened, "msg_1", "{}");
    expect(verifyWebhook(secret, headers, "{}")).toEqual({ ok: true, id: "msg_1" });
  });

  it("binds the ciphertext to the fleet id: copied to another fleet it does not open", async () => {
    const { token } = await newTenant();
    const a = await callJson("POST", "/v1/fleets", 201, { token, json: fleetBody });
    const b = await callJson("POST", "/v1/fleets", 201, { token, json: fleetBody });
    await env.DB.prepare("UPDATE fleets SET signing_secret_enc = (SELECT signing_secret_enc FROM fleets WHERE id = ?) WHERE id = ?")
      .bind(a.id, b.id)
      .run();
    await expect(fleetSigningSecret(env, (await findFleet(env, b.id))!)).rejects.toThrow(b.id);
  });

  it("refuses bad input with 400: URL scheme, GPU type, capacity, secret format, unknown fields", async () => {
    const { token } = await newTenant();
    for (const json of [
      { ...fleetBody, url: "ftp://x/y" },
      { ...fleetBody, url: "not a url" },
      { ...fleetBody, gpuTypes: ["TPU"] },
      { ...fleetBody, gpuTypes: ["ANY"] },
      { ...fleetBody, maxConcurrentBuilds: 0 },
      { ...fleetBody, maxConcurrentBuilds: 1.5 },
      { ...fleetBody, signingSecret: "plain" },
      { ...fleetBody, signingSecret: "whsec_c2hvcnQ=" },
      { ...fleetBody, extra: 1 },
      { name: "x" },
    ]) {
      const body = await callJson("POST", "/v1/fleets", 400, { token, json });
      expect(body.error.code).toBe("invalid_request");
      if ("signingSecret" in json) expect(JSON.stringify(body)).not.toContain(json.signingSecret as string);
    }
  });

  it("lets only admins register shared fleets; scopes are enforced", async () => {
    const { token } = await newTenant();
    await callJson("POST", "/v1/fleets", 403, { token, json: { ...fleetBody, shared: true } });
    const shared = await callJson("POST", "/v1/fleets", 201, { json: { ...fleetBody, shared: true } });
    expect(shared).toMatchObject({ shared: true, workspaceId: null });
    const readOnly = await newTenant(["fleets:read"]);
    await callJson("POST", "/v1/fleets", 403, { token: readOnly.token, json: fleetBody });
    const noScope = await newTenant(["images:read"]);
    await callJson("GET", "/v1/fleets", 403, { token: noScope.token });
  });
});

describe("GET/PATCH /v1/fleets", () => {
  it("shows own and shared fleets, never another workspace's (404, not 403)", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const own = await callJson("POST", "/v1/fleets", 201, { token: a.token, json: fleetBody });
    const theirs = await callJson("POST", "/v1/fleets", 201, { token: b.token, json: fleetBody });
    const shared = await callJson("POST", "/v1/fleets", 201, { json: { ...fleetBody, shared: true } });
    const ids = (await callJson("GET", "/v1/fleets", 200, { token: a.token })).fleets.map((f: { id: string }) => f.id);
    expect(ids).toContain(own.id);
    expect(ids).toContain(shared.id);
    expect(ids).not.toContain(theirs.id);
    await callJson("GET", `/v1/fleets/${theirs.id}`, 404, { token: a.token });
    await callJson("PATCH", `/v1/fleets/${theirs.id}`, 404, { token: a.token, json: { disabled: true } });
    await callJson("GET", `/v1/fleets/${shared.id}`, 200, { token: a.token });
    await callJson("PATCH", `/v1/fleets/${shared.id}`, 403, { token: a.token, json: { disabled: true } });
    const all = (await callJson("GET", "/v1/fleets", 200)).fleets.map((f: { id: string }) => f.id);
    expect(all).toEqual(expect.arrayContaining([own.id, theirs.id, shared.id]));
  });

  it("updates fields, disables and re-enables, rotates the secret (shown once)", async () => {
    const { token } = await newTenant();
    const created = await callJson("POST", "/v1/fleets", 201, { token, json: fleetBody });
    const updated = await callJson("PATCH", `/v1/fleets/${created.id}`, 200, {
      token,
      json: { maxConcurrentBuilds: 9, gpuTypes: [], url: "http://127.0.0.1:9000/v1/jobs" },
    });
    expect(updated).toMatchObject({ maxConcurrentBuilds: 9, gpuTypes: [], url: "http://127.0.0.1:9000/v1/jobs", name: "gpu-pool" });
    expect(updated.signingSecret).toBeUndefined();
    const disabled = await callJson("PATCH", `/v1/fleets/${created.id}`, 200, { token, json: { disabled: true } });
    expect(disabled.disabledAt).toEqual(expect.any(String));
    const enabled = await callJson("PATCH", `/v1/fleets/${created.id}`, 200, { token, json: { disabled: false } });
    expect(enabled.disabledAt).toBeNull();
    const rotated = await callJson("PATCH", `/v1/fleets/${created.id}`, 200, { token, json: { rotateSigningSecret: true } });
    expect(rotated.signingSecret).toMatch(/^whsec_/);
    expect(rotated.signingSecret).not.toBe(created.signingSecret);
    expect(await fleetSigningSecret(env, (await findFleet(env, created.id))!)).toBe(rotated.signingSecret);
  });

  it("refuses empty, contradictory and unknown updates", async () => {
    const { token } = await newTenant();
    const created = await callJson("POST", "/v1/fleets", 201, { token, json: fleetBody });
    for (const json of [
      {},
      { rotateSigningSecret: true, signingSecret: newWebhookSecret() },
      { rotateSigningSecret: false },
      { workspaceId: "ws_x" },
    ]) {
      await callJson("PATCH", `/v1/fleets/${created.id}`, 400, { token, json });
    }
    await callJson("PATCH", "/v1/fleets/flt_missing", 404, { token, json: { disabled: true } });
  });
});

describe("listDispatchableFleets", () => {
  it("returns the workspace's enabled fleets first, then enabled shared ones, nothing else", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const own = await callJson("POST", "/v1/fleets", 201, { token: a.token, json: fleetBody });
    const ownDisabled = await callJson("POST", "/v1/fleets", 201, { token: a.token, json: fleetBody });
    await callJson("PATCH", `/v1/fleets/${ownDisabled.id}`, 200, { token: a.token, json: { disabled: true } });
    const theirs = await callJson("POST", "/v1/fleets", 201, { token: b.token, json: fleetBody });
    const shared = await callJson("POST", "/v1/fleets", 201, { json: { ...fleetBody, shared: true } });
    const fleets = await listDispatchableFleets(env, a.workspace.id);
    const ids = fleets.map((f) => f.id);
    expect(ids).toContain(own.id);
    expect(ids).toContain(shared.id);
    expect(ids).not.toContain(ownDisabled.id);
    expect(ids).not.toContain(theirs.id);
    expect(ids.indexOf(own.id)).toBeLessThan(ids.indexOf(shared.id));
    expect(fleets.find((f) => f.id === own.id)).toMatchObject({
      gpuTypes: ["T4", "A100-80GB"],
      maxConcurrentBuilds: 4,
      workspaceId: a.workspace.id,
    });
    expect(await findFleet(env, "flt_nope")).toBeNull();
  });

  it("answers 401 for requests without a token", async () => {
    expect((await call("GET", "/v1/fleets", { token: null })).status).toBe(401);
  });
});
