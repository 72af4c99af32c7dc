// GET /v1/admin/status: what `kiln doctor` reads on the server side (migrations against
// d1_migrations, secrets, bindings, fleet probes), admin tokens only.
import { describe, expect, it } from "vitest";
import { interpretSignedProbe } from "../../workers/fleet-probe.ts";
import { EXPECTED_MIGRATIONS, migrationStatus } from "../../workers/routes/admin.ts";
import { call, callJson, newTenant } from "./periphery-helpers.ts";

describe("migrationStatus", () => {
  it("is current when every expected migration is applied and nothing else", () => {
    expect(migrationStatus(["0000_init.sql", "0001_x.sql"], ["0000_init.sql", "0001_x.sql"])).toEqual({
      expected: 2,
      applied: 2,
      pending: [],
      unknown: [],
      current: true,
    });
  });

  it("names pending migrations, and migrations the deployed code does not know", () => {
    expect(migrationStatus(["0000_init.sql", "0001_x.sql"], ["0000_init.sql"])).toMatchObject({ pending: ["0001_x.sql"], current: false });
    expect(migrationStatus(["0000_init.sql"], ["0000_init.sql", "0001_newer.sql"])).toMatchObject({
      unknown: ["0001_newer.sql"],
      current: false,
    });
  });

  it("expects the migrations drizzle-kit generated, as file names", () => {
    expect(EXPECTED_MIGRATIONS.length).toBeGreaterThan(0);
    for (const name of EXPECTED_MIGRATIONS) expect(name).toMatch(/^\d{4}_[a-z0-9_]+\.sql$/);
  });
});

describe("interpretSignedProbe", () => {
  it("reads the reference runner's answers to a signed non-job body", () => {
    expect(interpretSignedProbe(400, "invalid_job")).toMatchObject({ ok: true, code: "signature_accepted" });
    expect(interpretSignedProbe(401, "bad_signature")).toMatchObject({ ok: false, code: "signature_refused" });
    expect(interpretSignedProbe(401, "stale_timestamp")).toMatchObject({ ok: false, code: "clock_skew" });
    expect(interpretSignedProbe(202, null)).toMatchObject({ ok: false, code: "probe_accepted" });
    expect(interpretSignedProbe(502, null)).toMatchObject({ ok: false, code: "unexpected_answer" });
  });
});

describe("GET /v1/admin/status", () => {
  it("reports migrations current, secrets and bindings in place for the test deployment", async () => {
    const status = await callJson("GET", "/v1/admin/status", 200);
    expect(status).toEqual({
      ok: true,
      migrations: { expected: EXPECTED_MIGRATIONS.length, applied: EXPECTED_MIGRATIONS.length, pending: [], unknown: [], current: true },
      secrets: { KILN_ADMIN_TOKEN: true, KILN_SECRET_KEY: "ok" },
      bindings: { missing: [], rateLimitsMissing: [] },
    });
  });

  it("probes every enabled fleet with ?fleets=true and says why one fails", async () => {
    const { workspace } = await newTenant();
    const created = await callJson("POST", "/v1/fleets", 201, {
      workspace: workspace.name,
      json: { name: "nowhere", url: "http://127.0.0.1:9/v1/jobs", gpuTypes: [], maxConcurrentBuilds: 1 },
    });
    const status = await callJson("GET", "/v1/admin/status?fleets=true", 200);
    const fleet = status.fleets.find((f: { id: string }) => f.id === created.id);
    expect(fleet.reachable).toMatchObject({ ok: false, code: "unreachable", status: null });
    expect(fleet.signing).toMatchObject({ ok: false, code: "unreachable" });
    expect(status.ok).toBe(false);
    // The signing secret never appears in the answer.
    expect(JSON.stringify(status)).not.toContain(created.signingSecret);
  });

  it("is for admin tokens only", async () => {
    const { token } = await newTenant();
    expect((await call("GET", "/v1/admin/status", { token })).status).toBe(403);
    expect((await call("GET", "/v1/admin/status", { token: null })).status).toBe(401);
  });
});
