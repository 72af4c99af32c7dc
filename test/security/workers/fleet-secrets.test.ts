// Issue "Tenant isolation and trust", item 5: secret values reach only fleets an admin of the
// workspace marked trusted with secrets. A token with `fleets:write` and `images:write` (no
// `secrets:read`) registers its own fleet URL, disables the real one and submits a build naming
// a secret: the build fails with `secrets_need_trusted_fleet` and its URL never sees the value.
import { describe, expect, inject, it } from "vitest";
import {
  apiJson,
  dispatches,
  layer,
  newFleet,
  newTenant,
  newToken,
  nthJob,
  settle,
  submitImage,
  type TestFleet,
} from "../../workers/helpers.ts";
import { ADMIN } from "../../workers/periphery-helpers.ts";

const VALUE = "fleet-trust-secret-value-must-not-leak";
const ATTACKER_SCOPES = ["fleets:read", "fleets:write", "images:read", "images:write"] as const;

let counter = 0;
/** A recorder endpoint no fleet row points at yet (the attacker registers it through the API). */
function trap(): { fleet: TestFleet; url: string } {
  const key = `trap-${Date.now().toString(36)}-${counter++}-${Math.random().toString(36).slice(2, 8)}`;
  return { fleet: { id: "", name: key, secret: "", recorderKey: key }, url: `${inject("fleetRecorderUrl")}/fleet/${key}/accept` };
}

const secretLayer = (seed: string) => layer([`RUN echo ${seed}`], { secrets: ["db"] }, true);

describe("fleets trusted with secrets", () => {
  it("fleets:write and images:write cannot redirect a secret to a URL of their choosing", async () => {
    const t = await newTenant();
    const real = await newFleet(t.workspaceId);
    expect((await apiJson("PATCH", `/v1/fleets/${real.id}`, { token: t.token, json: { trustedWithSecrets: true } })).status).toBe(200);
    expect((await apiJson("PUT", "/v1/secrets/db", { token: t.token, json: { values: { PASSWORD: VALUE } } })).status).toBe(200);
    const attacker = await newToken(t.workspaceId, ATTACKER_SCOPES);
    const { fleet: sink, url } = trap();
    const fields = { name: "mine", url, maxConcurrentBuilds: 4 };
    const trusted = await apiJson("POST", "/v1/fleets", { token: attacker, json: { ...fields, trustedWithSecrets: true } });
    expect(trusted.status).toBe(403);
    expect(trusted.body.error.message).toContain("fleets:admin");
    const created = await apiJson("POST", "/v1/fleets", { token: attacker, json: fields });
    expect(created.status).toBe(201);
    expect(created.body.trustedWithSecrets).toBe(false);
    const own = created.body.id as string;
    expect((await apiJson("PATCH", `/v1/fleets/${own}`, { token: attacker, json: { trustedWithSecrets: true } })).status).toBe(403);
    // Moving the trusted fleet to the attacker's URL needs fleets:admin too; untrusting it on the way is allowed.
    expect((await apiJson("PATCH", `/v1/fleets/${real.id}`, { token: attacker, json: { url } })).status).toBe(403);
    expect((await apiJson("PATCH", `/v1/fleets/${real.id}`, { token: attacker, json: { disabled: true } })).status).toBe(200);

    const submitted = await submitImage(attacker, [secretLayer(`attack-${own}`)]);
    expect(submitted.status).toBe(202);
    const snapshot = await settle(submitted.body.buildId);
    expect(snapshot.build.machine.status).toBe("failed");
    expect(snapshot.build.machine.failure!.message).toMatch(/^secrets_need_trusted_fleet: .*\(db\).*fleets:admin.*trustedWithSecrets/);
    const view = await apiJson("GET", `/v1/builds/${submitted.body.buildId}`, { token: attacker });
    expect(view.body.failure.message).toContain("secrets_need_trusted_fleet");
    expect(await dispatches(sink, 0)).toEqual([]);

    // The same URL gets builds without secrets (the fleet works), never a secret value.
    const plain = await submitImage(attacker, [layer([`RUN echo plain-${own}`], {}, true)]);
    await settle(plain.body.buildId);
    const [job] = await dispatches(sink, 1);
    expect(job!.job.secrets).toEqual({});
    expect(job!.body).not.toContain(VALUE);
    const moved = await apiJson("PATCH", `/v1/fleets/${real.id}`, {
      token: attacker,
      json: { url, trustedWithSecrets: false, disabled: false },
    });
    expect(moved.status).toBe(200);
    expect(moved.body.trustedWithSecrets).toBe(false);
    const again = await submitImage(attacker, [secretLayer(`again-${own}`)]);
    expect((await settle(again.body.buildId)).build.machine.failure!.message).toContain("secrets_need_trusted_fleet");
    for (const record of await dispatches(sink, 0)) expect(record.body).not.toContain(VALUE);
  });

  it("dispatches a build with secrets only to a fleet an admin-level token trusted, with the values", async () => {
    const t = await newTenant();
    const untrusted = await newFleet(t.workspaceId);
    const trusted = await newFleet(t.workspaceId);
    await apiJson("PUT", "/v1/secrets/db", { token: t.token, json: { values: { PASSWORD: VALUE } } });
    const writer = await newToken(t.workspaceId, ["fleets:write", "fleets:read"]);
    expect((await apiJson("PATCH", `/v1/fleets/${trusted.id}`, { token: writer, json: { trustedWithSecrets: true } })).status).toBe(403);
    const fleetAdmin = await newToken(t.workspaceId, ["fleets:write", "fleets:admin", "fleets:read"]);
    const marked = await apiJson("PATCH", `/v1/fleets/${trusted.id}`, { token: fleetAdmin, json: { trustedWithSecrets: true } });
    expect(marked.status).toBe(200);
    expect(marked.body.trustedWithSecrets).toBe(true);
    const listed = await apiJson("GET", "/v1/fleets", { token: writer });
    const flags = Object.fromEntries(
      listed.body.fleets.map((f: { id: string; trustedWithSecrets: boolean }) => [f.id, f.trustedWithSecrets]),
    );
    expect(flags).toEqual({ [untrusted.id]: false, [trusted.id]: true });

    const submitted = await submitImage(t.token, [secretLayer(`trusted-${trusted.id}`)]);
    await settle(submitted.body.buildId);
    const job = await nthJob(trusted, 1);
    expect(job.secrets).toEqual({ db: { PASSWORD: VALUE } });
    expect(await dispatches(untrusted, 0)).toEqual([]);
    // Untrusting needs only fleets:write; the bootstrap admin token may trust any fleet.
    expect((await apiJson("PATCH", `/v1/fleets/${trusted.id}`, { token: writer, json: { trustedWithSecrets: false } })).status).toBe(200);
    expect((await apiJson("PATCH", `/v1/fleets/${untrusted.id}`, { token: ADMIN, json: { trustedWithSecrets: true } })).body).toMatchObject(
      {
        trustedWithSecrets: true,
      },
    );
  });
});
