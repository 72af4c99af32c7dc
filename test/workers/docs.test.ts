// The OpenAPI document documents every periphery route with an operationId, one resource tag,
// its security and the shared error schema, and /docs renders it offline.
import { KILN_VERSION } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { badgesApp } from "../../workers/routes/badges.ts";
import { contextsApp } from "../../workers/routes/contexts.ts";
import { fleetsApp } from "../../workers/routes/fleets.ts";
import { runnerContextsApp } from "../../workers/routes/runner-contexts.ts";
import { secretsApp } from "../../workers/routes/secrets.ts";
import { tagsApp } from "../../workers/routes/tags.ts";
import { tokensApp } from "../../workers/routes/tokens.ts";
import { workspacesApp } from "../../workers/routes/workspaces.ts";
import { call } from "./periphery-helpers.ts";

const PERIPHERY_OPERATIONS = [
  "POST /v1/workspaces",
  "GET /v1/workspaces",
  "POST /v1/tokens",
  "GET /v1/tokens",
  "DELETE /v1/tokens/{id}",
  "GET /v1/whoami",
  "POST /v1/fleets",
  "GET /v1/fleets",
  "GET /v1/fleets/{id}",
  "PATCH /v1/fleets/{id}",
  "DELETE /v1/fleets/{id}",
  "PUT /v1/secrets/{name}",
  "GET /v1/secrets",
  "DELETE /v1/secrets/{name}",
  "POST /v1/contexts/missing",
  "PUT /v1/contexts/{digest}",
  "POST /v1/contexts/{digest}/uploads",
  "PUT /v1/contexts/{digest}/uploads/{uploadId}/parts/{n}",
  "POST /v1/contexts/{digest}/uploads/{uploadId}/complete",
  "DELETE /v1/contexts/{digest}/uploads/{uploadId}",
  "GET /v1/runner/contexts/{digest}",
  "PUT /v1/tags/{name}",
  "GET /v1/tags/{name}",
  "GET /v1/tags",
  "DELETE /v1/tags/{name}",
  "GET /badges/{workspace}/{tag}.svg",
  "GET /badges/{workspace}/{tag}.json",
];

function operationsOf(spec: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(spec.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
}

describe("GET /openapi.json", () => {
  it("each periphery sub-app generates its part of the document", () => {
    const apps = [workspacesApp, tokensApp, fleetsApp, secretsApp, contextsApp, runnerContextsApp, tagsApp, badgesApp];
    const operations = apps.flatMap((a) =>
      operationsOf(a.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "t", version: "1" } }) as never),
    );
    expect(operations.sort()).toEqual([...PERIPHERY_OPERATIONS].sort());
  });

  it("documents every admin, secrets, contexts, tags and badges route", async () => {
    const response = await call("GET", "/openapi.json", { token: null });
    expect(response.status).toBe(200);
    const spec = await response.json<any>();
    expect(spec.openapi).toBe("3.1.0");
    const operations = operationsOf(spec);
    for (const op of PERIPHERY_OPERATIONS) expect(operations).toContain(op);
    // The hidden implementation route of badges stays out of the document.
    expect(operations).not.toContain("GET /badges/{workspace}/{file}");
    expect(spec.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    expect(spec.components.schemas.Error).toBeDefined();
    expect(spec.paths["/v1/secrets/{name}"].put.requestBody.content["application/json"].schema).toBeDefined();
  });
});

const RESOURCE_TAGS = [
  "images",
  "builds",
  "webhooks",
  "contexts",
  "tags",
  "secrets",
  "tokens",
  "fleets",
  "workspaces",
  "registry",
  "badges",
  "attestations",
  "status-pages",
  "runner",
  "admin",
  "meta",
];

type Operation = { operationId?: string; tags?: string[]; security?: Record<string, string[]>[]; responses: Record<string, any> };

async function documentOperations() {
  const spec = await (await call("GET", "/openapi.json", { token: null })).json<any>();
  const ops = Object.entries(spec.paths as Record<string, Record<string, Operation>>).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, path, op })),
  );
  return { spec, ops };
}

describe("operation metadata", () => {
  it("gives every operation a unique camelCase verbNoun operationId and one resource tag", async () => {
    const { spec, ops } = await documentOperations();
    const ids = ops.map(({ name, op }) => {
      expect(op.operationId, name).toMatch(/^[a-z]+[A-Z][A-Za-z]*$/);
      expect(op.tags, name).toHaveLength(1);
      expect(RESOURCE_TAGS, name).toContain(op.tags![0]);
      return op.operationId;
    });
    expect(new Set(ids).size).toBe(ids.length);
    expect(spec.tags.map((t: { name: string }) => t.name)).toEqual(RESOURCE_TAGS);
    const byId = Object.fromEntries(ops.map(({ name, op }) => [op.operationId, name]));
    expect(byId).toMatchObject({
      createImage: "POST /v1/images",
      getImage: "GET /v1/images/{id}",
      listTags: "GET /v1/tags",
      deleteTag: "DELETE /v1/tags/{name}",
      cancelBuild: "POST /v1/builds/{id}/cancel",
      deleteFleet: "DELETE /v1/fleets/{id}",
      getWhoami: "GET /v1/whoami",
      setRepositoryVisibility: "PUT /v1/registry/repositories",
      getHealth: "GET /healthz",
      checkRegistry: "GET /v2/",
    });
  });

  it("names the server, the version and a defined security scheme for every operation", async () => {
    const { spec, ops } = await documentOperations();
    expect(spec.info.version).toBe(KILN_VERSION);
    expect(spec.servers[0]).toMatchObject({ url: "/", description: expect.stringContaining("origin") });
    const schemes = spec.components.securitySchemes;
    expect(schemes.fleetSignature).toMatchObject({ type: "apiKey", in: "header", name: "webhook-signature" });
    expect(schemes.jobToken).toMatchObject({ type: "http", scheme: "bearer" });
    for (const { name, path, op } of ops) {
      expect(Array.isArray(op.security), name).toBe(true);
      for (const requirement of op.security!) for (const scheme of Object.keys(requirement)) expect(schemes, name).toHaveProperty(scheme);
      if (path.startsWith("/v1/runner/")) expect(op.security!.flatMap(Object.keys), name).not.toContain("bearerAuth");
      else if (path.startsWith("/v1/")) expect(op.security, name).toEqual([{ bearerAuth: [] }]);
    }
  });

  it("references the one Error schema from every error response (the OCI /v2 API keeps its own format)", async () => {
    const { spec, ops } = await documentOperations();
    expect(spec.components.schemas.Error.properties.error.required).toEqual(["code", "message"]);
    for (const { name, path, op } of ops) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const expected = path.startsWith("/v2/") ? "#/components/schemas/RegistryErrors" : "#/components/schemas/Error";
        expect(response.content?.["application/json"]?.schema, `${name} ${status}`).toEqual({ $ref: expected });
      }
    }
  });

  it("describes the OCI registry with a link to the Distribution spec", async () => {
    const { spec } = await documentOperations();
    const base = spec.paths["/v2/"].get;
    expect(base.description).toContain("https://github.com/opencontainers/distribution-spec/blob/main/spec.md");
    for (const endpoint of ["/manifests/", "/blobs/uploads/", "/tags/list", "/referrers/"]) expect(base.description).toContain(endpoint);
  });
});

describe("GET /docs", () => {
  it("serves a self-contained page that may load nothing from another origin", async () => {
    const response = await call("GET", "/docs", { token: null });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = response.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    const html = await response.text();
    expect(html).toContain('fetch("/openapi.json")');
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
    expect(html).not.toContain("innerHTML");
  });
});
