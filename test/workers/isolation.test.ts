// Workspace isolation across every periphery resource: a token of workspace A sees nothing of
// workspace B, and B's objects answer 404 (never 403), even when A names B in x-kiln-workspace.
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { contextDownloadPath, MIN_PART_BYTES } from "../../workers/contexts/upload-plan.ts";
import { secretValuesForJob } from "../../workers/secrets/store.ts";
import { bytes, call, callJson, insertImage, insertJobToken, newTenant, sha256Digest } from "./periphery-helpers.ts";

type Tenant = Awaited<ReturnType<typeof newTenant>>;
let a: Tenant;
let b: Tenant;
const fixture = { fleetId: "", tokenId: "", imageId: "", digest: "", uploadId: "" };

beforeAll(async () => {
  a = await newTenant();
  b = await newTenant();
  fixture.fleetId = (
    await callJson("POST", "/v1/fleets", 201, {
      token: b.token,
      json: { name: "b", url: "https://b.example/v1/jobs", maxConcurrentBuilds: 1 },
    })
  ).id;
  fixture.tokenId = (await callJson("POST", "/v1/tokens", 201, { token: b.token, json: { name: "b2", scopes: ["images:read"] } })).id;
  await callJson("PUT", "/v1/secrets/b-secret", 200, { token: b.token, json: { values: { K: "b-value" } } });
  fixture.imageId = await insertImage(b.workspace.id, "succeeded");
  await callJson("PUT", "/v1/tags/b-tag", 200, { token: b.token, json: { imageId: fixture.imageId } });
  const data = bytes(1234, 31);
  fixture.digest = await sha256Digest(data);
  expect((await call("PUT", `/v1/contexts/${fixture.digest}`, { token: b.token, body: data })).status).toBe(201);
  fixture.uploadId = (
    await callJson("POST", `/v1/contexts/${fixture.digest}/uploads`, 201, {
      token: b.token,
      json: { sizeBytes: 10, partSizeBytes: MIN_PART_BYTES },
    })
  ).uploadId;
});

describe("a token of workspace A", () => {
  it("gets 404 for each of B's objects, by id or name", async () => {
    const requests: [string, string, unknown?][] = [
      ["GET", `/v1/fleets/${fixture.fleetId}`],
      ["PATCH", `/v1/fleets/${fixture.fleetId}`, { disabled: true }],
      ["DELETE", `/v1/tokens/${fixture.tokenId}`],
      ["DELETE", "/v1/secrets/b-secret"],
      ["GET", "/v1/tags/b-tag"],
      ["PUT", "/v1/tags/mine", { imageId: fixture.imageId }],
      ["DELETE", `/v1/contexts/${fixture.digest}/uploads/${fixture.uploadId}`],
      ["POST", `/v1/contexts/${fixture.digest}/uploads/${fixture.uploadId}/complete`, { parts: [{ partNumber: 1, etag: "x" }] }],
    ];
    for (const [method, path, json] of requests) {
      const response = await call(method, path, { token: a.token, json });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect((await response.json<any>()).error.code).toBe("not_found");
    }
    expect(
      (await call("PUT", `/v1/contexts/${fixture.digest}/uploads/${fixture.uploadId}/parts/1`, { token: a.token, body: bytes(10) })).status,
    ).toBe(404);
  });

  it("lists none of B's fleets, tokens or secrets", async () => {
    const listings = await Promise.all(
      ["/v1/fleets", "/v1/tokens", "/v1/secrets"].map((path) => callJson("GET", path, 200, { token: a.token })),
    );
    const text = JSON.stringify(listings);
    for (const needle of [fixture.fleetId, fixture.tokenId, "b-secret", b.workspace.id]) expect(text).not.toContain(needle);
  });

  it("cannot switch workspace with x-kiln-workspace (only admin tokens may)", async () => {
    await callJson("PUT", "/v1/secrets/a-secret", 200, { token: a.token, workspace: b.workspace.name, json: { values: { K: "a-value" } } });
    expect(await secretValuesForJob(env, a.workspace.id, ["a-secret"])).toEqual({ "a-secret": { K: "a-value" } });
    const { secrets } = await callJson("GET", "/v1/secrets", 200, { token: a.token, workspace: b.workspace.name });
    expect(secrets.map((s: { name: string }) => s.name)).toEqual(["a-secret"]);
    await callJson("GET", "/v1/tags/b-tag", 404, { token: a.token, workspace: b.workspace.name });
  });

  it("must upload B's context itself, and A's jobs cannot download B's", async () => {
    expect(await callJson("POST", "/v1/contexts/missing", 200, { token: a.token, json: { digests: [fixture.digest] } })).toEqual({
      missing: [fixture.digest],
    });
    expect(await callJson("POST", "/v1/contexts/missing", 200, { token: b.token, json: { digests: [fixture.digest] } })).toEqual({
      missing: [],
    });
    const jobOfA = await insertJobToken(a.workspace.id);
    expect((await call("GET", contextDownloadPath(fixture.digest), { token: jobOfA })).status).toBe(404);
    const jobOfB = await insertJobToken(b.workspace.id);
    expect((await call("GET", contextDownloadPath(fixture.digest), { token: jobOfB })).status).toBe(200);
  });

  it("never reaches B's secret values through the build core's helper", async () => {
    await expect(secretValuesForJob(env, a.workspace.id, ["b-secret"])).rejects.toMatchObject({ status: 422, code: "secret_not_found" });
  });

  it("left B's objects intact", async () => {
    expect((await callJson("GET", `/v1/fleets/${fixture.fleetId}`, 200, { token: b.token })).disabledAt).toBeNull();
    expect(
      (await callJson("GET", "/v1/tokens", 200, { token: b.token })).tokens.every((t: { revokedAt: unknown }) => t.revokedAt === null),
    ).toBe(true);
    expect(await secretValuesForJob(env, b.workspace.id, ["b-secret"])).toEqual({ "b-secret": { K: "b-value" } });
    expect((await callJson("GET", "/v1/tags/b-tag", 200, { token: b.token })).imageId).toBe(fixture.imageId);
  });
});
