// The OpenAPI document documents every periphery route, and /docs renders it offline.
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
  "POST /v1/fleets",
  "GET /v1/fleets",
  "GET /v1/fleets/{id}",
  "PATCH /v1/fleets/{id}",
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
