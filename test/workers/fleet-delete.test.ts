// `DELETE /v1/fleets/:id`: removes an idle fleet, refuses with 409 `fleet_busy` while a build is
// dispatched to it or running on it, and keeps workspaces and shared fleets apart.
import { env } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { type BuildStatusColumn, builds } from "../../workers/db/schema/builds.ts";
import { findFleet } from "../../workers/fleets.ts";
import { call, callJson, newTenant } from "./periphery-helpers.ts";

const fleetBody = { name: "pool", url: "https://runners.example.com/v1/jobs", maxConcurrentBuilds: 2 };

/** A build of the workspace whose D1 projection says it is `status` on `fleetId`. */
async function buildOn(workspaceId: string, fleetId: string, status: BuildStatusColumn): Promise<string> {
  const id = `bd-${crypto.randomUUID().replaceAll("-", "").slice(0, 26)}`;
  const key = "b".repeat(64);
  await drizzle(env.DB)
    .insert(builds)
    .values({ id, workspaceId, topKey: key, layerKeys: [key], mode: "normal", status, fleetId });
  return id;
}

describe("DELETE /v1/fleets/:id", () => {
  it("deletes an idle fleet; it is gone from reads and lists", async () => {
    const { workspace, token } = await newTenant();
    const fleet = await callJson("POST", "/v1/fleets", 201, { token, json: fleetBody });
    // Ended builds do not hold a fleet.
    for (const status of ["succeeded", "failed", "cancelled", "timeout"] as const) await buildOn(workspace.id, fleet.id, status);
    expect(await callJson("DELETE", `/v1/fleets/${fleet.id}`, 200, { token })).toEqual({ ok: true });
    expect(await findFleet(env, fleet.id)).toBeNull();
    await callJson("GET", `/v1/fleets/${fleet.id}`, 404, { token });
    expect((await callJson("GET", "/v1/fleets", 200, { token })).fleets.map((f: { id: string }) => f.id)).not.toContain(fleet.id);
    expect((await callJson("DELETE", `/v1/fleets/${fleet.id}`, 404, { token })).error.code).toBe("not_found");
  });

  it("refuses with 409 fleet_busy while a build is dispatched or running, then deletes once it ended", async () => {
    const { workspace, token } = await newTenant();
    const fleet = await callJson("POST", "/v1/fleets", 201, { token, json: fleetBody });
    for (const status of ["dispatching", "running"] as const) {
      const buildId = await buildOn(workspace.id, fleet.id, status);
      const refused = await callJson("DELETE", `/v1/fleets/${fleet.id}`, 409, { token });
      expect(refused.error).toMatchObject({ code: "fleet_busy", message: expect.any(String) });
      expect(await findFleet(env, fleet.id)).not.toBeNull();
      await env.DB.prepare("UPDATE builds SET status = 'succeeded' WHERE id = ?").bind(buildId).run();
    }
    await callJson("DELETE", `/v1/fleets/${fleet.id}`, 200, { token });
  });

  it("answers 404 for another workspace's fleet and leaves it alone", async () => {
    const a = await newTenant();
    const b = await newTenant();
    const theirs = await callJson("POST", "/v1/fleets", 201, { token: b.token, json: fleetBody });
    expect((await callJson("DELETE", `/v1/fleets/${theirs.id}`, 404, { token: a.token })).error.code).toBe("not_found");
    await callJson("GET", `/v1/fleets/${theirs.id}`, 200, { token: b.token });
  });

  it("lets only admins delete shared fleets, and needs fleets:write", async () => {
    const { token } = await newTenant();
    const shared = await callJson("POST", "/v1/fleets", 201, { json: { ...fleetBody, shared: true } });
    expect((await callJson("DELETE", `/v1/fleets/${shared.id}`, 403, { token })).error.code).toBe("forbidden");
    const reader = await newTenant(["fleets:read"]);
    const own = await callJson("POST", "/v1/fleets", 201, { workspace: reader.workspace.name, json: fleetBody });
    expect((await callJson("DELETE", `/v1/fleets/${own.id}`, 403, { token: reader.token })).error.code).toBe("forbidden");
    expect((await call("DELETE", `/v1/fleets/${shared.id}`, { token: null })).status).toBe(401);
    await callJson("DELETE", `/v1/fleets/${shared.id}`, 200, {});
  });
});
