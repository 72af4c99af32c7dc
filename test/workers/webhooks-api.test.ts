// /v1/webhooks: create (secret once, encrypted at rest), list, read, delete; validation with
// the SSRF policy (400); scopes; and isolation: another workspace's subscription is always 404.
import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { webhookSubscriptions } from "../../workers/db/schema/webhooks.ts";
import { decryptJson } from "../../workers/secrets/secret-box.ts";
import { webhookAad } from "../../workers/webhooks/store.ts";
import { apiJson, newTenant } from "./helpers.ts";

const URL_OK = "https://hooks.example.com/kiln";

async function create(token: string, body: Record<string, unknown> = {}) {
  return apiJson("POST", "/v1/webhooks", { token, json: { url: URL_OK, events: ["build.succeeded", "build.failed"], ...body } });
}

describe("/v1/webhooks", () => {
  it("creates a subscription whose secret is answered once and stored only encrypted", async () => {
    const t = await newTenant();
    const created = await create(t.token, { description: "CI" });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^wh_[0-9a-f]{32}$/),
      url: URL_OK,
      events: ["build.succeeded", "build.failed"],
      description: "CI",
      createdAt: expect.any(String),
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    const { id, secret } = created.body;
    const row = await drizzle(env.DB).select().from(webhookSubscriptions).where(eq(webhookSubscriptions.id, id)).get();
    expect(row!.secretCiphertext).not.toContain(secret.slice(6));
    expect(await decryptJson(env, webhookAad(id), row!.secretCiphertext)).toBe(secret);
    const listed = await apiJson("GET", "/v1/webhooks", { token: t.token });
    expect(listed.body.webhooks).toEqual([
      { id, url: URL_OK, events: ["build.succeeded", "build.failed"], description: "CI", createdAt: created.body.createdAt },
    ]);
    const one = await apiJson("GET", `/v1/webhooks/${id}`, { token: t.token });
    expect(one.body).toEqual(listed.body.webhooks[0]);
    expect(JSON.stringify([listed.body, one.body])).not.toContain("whsec_");
  });

  it("deletes a subscription and its delivery log", async () => {
    const t = await newTenant();
    const { id } = (await create(t.token)).body;
    expect((await apiJson("DELETE", `/v1/webhooks/${id}`, { token: t.token })).body).toEqual({ ok: true });
    expect((await apiJson("GET", `/v1/webhooks/${id}`, { token: t.token })).status).toBe(404);
    expect((await apiJson("GET", `/v1/webhooks/${id}/deliveries`, { token: t.token })).status).toBe(404);
    expect((await apiJson("DELETE", `/v1/webhooks/${id}`, { token: t.token })).status).toBe(404);
    expect((await apiJson("GET", "/v1/webhooks", { token: t.token })).body.webhooks).toEqual([]);
  });

  it.each([
    ["http://hooks.example.com/", /https/],
    ["https://127.0.0.1/", /loopback/],
    ["https://2130706433/", /loopback/],
    ["https://[::ffff:127.0.0.1]/", /loopback/],
    ["https://10.0.0.8/", /private/],
    ["https://100.64.0.1/", /carrier-grade/],
    ["https://169.254.169.254/latest/meta-data/", /link-local/],
    ["https://metadata.google.internal./", /inside a network/],
    ["https://localhost./", /inside a network/],
    ["https://[fd00::1]/", /private/],
    ["https://[fe80::1]/", /link-local/],
    ["https://admin:pw@hooks.example.com/", /credentials/],
  ])("refuses %s with 400", async (url, why) => {
    const t = await newTenant();
    const r = await create(t.token, { url });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("invalid_request");
    expect(r.body.error.message).toMatch(why);
  });

  it("refuses unknown events, duplicate or no events, unknown fields and oversized URLs with 400", async () => {
    const t = await newTenant();
    for (const body of [
      { events: ["build.started"] },
      { events: [] },
      { events: ["build.failed", "build.failed"] },
      { secret: "whsec_mine" },
      { url: `https://example.com/${"a".repeat(2100)}` },
      { description: "x".repeat(300) },
    ]) {
      const r = await create(t.token, body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.body.error.code).toBe("invalid_request");
    }
    expect((await apiJson("GET", "/v1/webhooks/not-an-id", { token: t.token })).status).toBe(400);
    expect((await apiJson("GET", "/v1/webhooks", { token: t.token })).body.webhooks).toEqual([]);
  });

  it("needs webhooks:write to change and webhooks:read to read", async () => {
    const reader = await newTenant(["webhooks:read"]);
    expect((await create(reader.token)).status).toBe(403);
    expect((await apiJson("GET", "/v1/webhooks", { token: reader.token })).status).toBe(200);
    const images = await newTenant(["images:read", "images:write"]);
    expect((await apiJson("GET", "/v1/webhooks", { token: images.token })).status).toBe(403);
    const writer = await newTenant(["webhooks:write"]);
    const { id } = (await create(writer.token)).body;
    expect((await apiJson("GET", `/v1/webhooks/${id}`, { token: writer.token })).status).toBe(403);
    expect((await apiJson("GET", "/v1/webhooks", { token: null })).status).toBe(401);
  });

  it("never shows or changes another workspace's subscription or deliveries", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const { id } = (await create(a.token)).body;
    expect((await apiJson("GET", "/v1/webhooks", { token: b.token })).body.webhooks).toEqual([]);
    for (const [method, path] of [
      ["GET", `/v1/webhooks/${id}`],
      ["DELETE", `/v1/webhooks/${id}`],
      ["GET", `/v1/webhooks/${id}/deliveries`],
      ["POST", `/v1/webhooks/${id}/test`],
      ["POST", `/v1/webhooks/${id}/deliveries/msg_abc/redeliver`],
    ] as const) {
      const r = await apiJson(method, path, { token: b.token });
      expect(r.status, `${method} ${path}`).toBe(404);
    }
    expect((await apiJson("GET", `/v1/webhooks/${id}`, { token: a.token })).status).toBe(200);
  });

  it("caps a workspace's subscriptions", async () => {
    const t = await newTenant();
    for (let i = 0; i < 25; i++) expect((await create(t.token)).status).toBe(201);
    const over = await create(t.token);
    expect(over.status).toBe(400);
    expect(over.body.error.message).toContain("at most 25");
  });
});
