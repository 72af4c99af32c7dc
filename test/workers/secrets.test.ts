// Secrets: write-only values encrypted at rest, listing names and key names only, delete,
// isolation, and the build core's checkRequiredKeys / secretValuesForJob.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../workers/errors.ts";
import { checkRequiredKeys, secretValuesForJob } from "../../workers/secrets/store.ts";
import { call, callJson, newTenant } from "./periphery-helpers.ts";

const VALUE = "s3cr3t-value-that-must-never-leak";

describe("PUT /v1/secrets/:name", () => {
  it("stores values encrypted and answers with key names only", async () => {
    const { workspace, token } = await newTenant();
    const text = await (await call("PUT", "/v1/secrets/db", { token, json: { values: { PASSWORD: VALUE, USER: "admin" } } })).text();
    const body = JSON.parse(text);
    expect(body).toMatchObject({ name: "db", keys: ["PASSWORD", "USER"] });
    expect(text).not.toContain(VALUE);
    const row = await env.DB.prepare("SELECT * FROM secrets WHERE workspace_id = ? AND name = 'db'").bind(workspace.id).first();
    expect(JSON.stringify(row)).not.toContain(VALUE);
    expect(await secretValuesForJob(env, workspace.id, ["db"])).toEqual({ db: { PASSWORD: VALUE, USER: "admin" } });
  });

  it("replaces all values on a second PUT and bumps updatedAt", async () => {
    const { workspace, token } = await newTenant();
    const first = await callJson("PUT", "/v1/secrets/api", 200, { token, json: { values: { A: "1", B: "2" } } });
    const second = await callJson("PUT", "/v1/secrets/api", 200, { token, json: { values: { C: "3" } } });
    expect(second.keys).toEqual(["C"]);
    expect(second.createdAt).toBe(first.createdAt);
    expect(Date.parse(second.updatedAt)).toBeGreaterThanOrEqual(Date.parse(first.updatedAt));
    expect(await secretValuesForJob(env, workspace.id, ["api"])).toEqual({ api: { C: "3" } });
  });

  it("refuses bad input with 400/413 and never echoes a value", async () => {
    const { token } = await newTenant();
    const cases: [string, unknown, number][] = [
      ["db", { values: {} }, 400],
      ["db", { values: { "1BAD": VALUE } }, 400],
      ["db", { values: { GOOD: 42 } }, 400],
      ["db", { values: { GOOD: VALUE }, extra: VALUE }, 400],
      ["db", { value: { GOOD: VALUE } }, 400],
      ["db", { values: { GOOD: VALUE + "x".repeat(64 * 1024) } }, 400],
      ["-bad", { values: { GOOD: VALUE } }, 400],
      ["db", { values: { GOOD: VALUE.repeat(10_000) } }, 413],
    ];
    for (const [name, json, status] of cases) {
      const response = await call("PUT", `/v1/secrets/${name}`, { token, json });
      const text = await response.text();
      expect(response.status, text).toBe(status);
      expect(text).not.toContain(VALUE);
    }
  });

  it("needs secrets:write to write and secrets:read to list", async () => {
    const { token } = await newTenant(["secrets:read"]);
    await callJson("PUT", "/v1/secrets/db", 403, { token, json: { values: { A: "1" } } });
    await callJson("DELETE", "/v1/secrets/db", 403, { token });
    const writer = await newTenant(["secrets:write"]);
    await callJson("GET", "/v1/secrets", 403, { token: writer.token });
    expect((await call("GET", "/v1/secrets", { token: null })).status).toBe(401);
  });
});

describe("GET and DELETE /v1/secrets", () => {
  it("lists names and key names by name, only the caller's workspace's", async () => {
    const { token } = await newTenant();
    const other = await newTenant();
    await callJson("PUT", "/v1/secrets/zeta", 200, { token, json: { values: { Z: VALUE } } });
    await callJson("PUT", "/v1/secrets/alpha", 200, { token, json: { values: { B: VALUE, A: VALUE } } });
    await callJson("PUT", "/v1/secrets/theirs", 200, { token: other.token, json: { values: { T: VALUE } } });
    const response = await call("GET", "/v1/secrets", { token });
    const text = await response.text();
    expect(text).not.toContain(VALUE);
    const { secrets } = JSON.parse(text);
    expect(secrets.map((s: { name: string; keys: string[] }) => [s.name, s.keys])).toEqual([
      ["alpha", ["A", "B"]],
      ["zeta", ["Z"]],
    ]);
  });

  it("deletes, and answers 404 for unknown or another workspace's secrets", async () => {
    const a = await newTenant();
    const b = await newTenant();
    await callJson("PUT", "/v1/secrets/shared-name", 200, { token: b.token, json: { values: { K: VALUE } } });
    await callJson("DELETE", "/v1/secrets/shared-name", 404, { token: a.token });
    expect(await secretValuesForJob(env, b.workspace.id, ["shared-name"])).toEqual({ "shared-name": { K: VALUE } });
    await callJson("DELETE", "/v1/secrets/shared-name", 200, { token: b.token });
    await callJson("DELETE", "/v1/secrets/shared-name", 404, { token: b.token });
  });
});

describe("checkRequiredKeys and secretValuesForJob", () => {
  it("accepts present secrets with their required keys", async () => {
    const { workspace, token } = await newTenant();
    await callJson("PUT", "/v1/secrets/hf", 200, { token, json: { values: { HF_TOKEN: VALUE, OTHER: "x" } } });
    await expect(
      checkRequiredKeys(env, workspace.id, [
        { name: "hf", requiredKeys: ["HF_TOKEN"] },
        { name: "hf", requiredKeys: [] },
      ]),
    ).resolves.toBeUndefined();
    await expect(checkRequiredKeys(env, workspace.id, [])).resolves.toBeUndefined();
  });

  it("throws 422 naming the missing secret or keys, never a value", async () => {
    const { workspace, token } = await newTenant();
    await callJson("PUT", "/v1/secrets/hf", 200, { token, json: { values: { HF_TOKEN: VALUE } } });
    const missing = await checkRequiredKeys(env, workspace.id, [{ name: "nope", requiredKeys: [] }]).catch((e) => e);
    expect(missing).toBeInstanceOf(ApiError);
    expect(missing).toMatchObject({ status: 422, code: "secret_not_found" });
    expect(missing.message).toContain("'nope'");
    const keys = await checkRequiredKeys(env, workspace.id, [{ name: "hf", requiredKeys: ["HF_TOKEN", "HF_HOME"] }]).catch((e) => e);
    expect(keys).toMatchObject({ status: 422, code: "secret_missing_keys", details: { secret: "hf", missingKeys: ["HF_HOME"] } });
    expect(JSON.stringify({ m: keys.message, d: keys.details })).not.toContain(VALUE);
  });

  it("returns exactly the named secrets, and 422 for one that is missing or in another workspace", async () => {
    const a = await newTenant();
    const b = await newTenant();
    await callJson("PUT", "/v1/secrets/one", 200, { token: a.token, json: { values: { K1: "v1" } } });
    await callJson("PUT", "/v1/secrets/two", 200, { token: a.token, json: { values: { K2: "v2" } } });
    await callJson("PUT", "/v1/secrets/three", 200, { token: a.token, json: { values: { K3: "v3" } } });
    await callJson("PUT", "/v1/secrets/b-only", 200, { token: b.token, json: { values: { K: VALUE } } });
    expect(await secretValuesForJob(env, a.workspace.id, ["two", "one", "two"])).toEqual({ one: { K1: "v1" }, two: { K2: "v2" } });
    expect(await secretValuesForJob(env, a.workspace.id, [])).toEqual({});
    const error = await secretValuesForJob(env, a.workspace.id, ["one", "b-only"]).catch((e) => e);
    expect(error).toMatchObject({ status: 422, code: "secret_not_found" });
    expect(error.message).toContain("'b-only'");
  });

  it("handles more names than D1 binds in one statement", async () => {
    const { workspace, token } = await newTenant();
    const names = Array.from({ length: 120 }, (_, i) => `s${i}`);
    for (const name of names) await callJson("PUT", `/v1/secrets/${name}`, 200, { token, json: { values: { K: name } } });
    const values = await secretValuesForJob(env, workspace.id, names);
    expect(Object.keys(values)).toHaveLength(120);
    expect(values.s119).toEqual({ K: "s119" });
    await expect(
      checkRequiredKeys(
        env,
        workspace.id,
        names.map((name) => ({ name, requiredKeys: ["K"] })),
      ),
    ).resolves.toBeUndefined();
  });
});
