import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

describe("GET /healthz", () => {
  it("answers 200 with ok through the Worker's own fetch", async () => {
    const response = await SELF.fetch("https://kiln.test/healthz");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });

  it("runs against a D1 database with the generated migrations applied", async () => {
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'layers'").all();
    expect(results).toEqual([{ name: "layers" }]);
  });
});
