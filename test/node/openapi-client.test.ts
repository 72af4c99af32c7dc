// /openapi.json of the running Worker (the shared `wrangler dev` stack) generates a TypeScript
// client with openapi-typescript, and a call to every operation through a wrapper typed by the
// generated `paths` type-checks under strict settings: the document is complete and
// consistent enough for a generated client. Every operation has an operationId and tags.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import openapiTS, { astToString } from "openapi-typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sharedStack } from "./e2e-stack.ts";
import { clientSource, operationsOf, STRICT_TSCONFIG } from "./openapi-client-source.ts";

const TSC = path.resolve(import.meta.dirname, "../../node_modules/typescript/bin/tsc");

type Spec = Parameters<typeof operationsOf>[0] & { paths: Record<string, Record<string, { tags?: string[] }>> };

let spec: Spec;
let dir: string;
let schema: string;

/** Writes `client.ts` next to the generated `schema.ts` and runs the repository's tsc on the directory. */
function typeCheck(client: string) {
  writeFileSync(path.join(dir, "client.ts"), client);
  return spawnSync(process.execPath, [TSC, "-p", dir, "--pretty", "false"], { encoding: "utf8" });
}

beforeAll(async () => {
  const stack = await sharedStack();
  const response = await fetch(`${stack.url}/openapi.json`);
  expect(response.status).toBe(200);
  spec = (await response.json()) as Spec;
  dir = mkdtempSync(path.join(os.tmpdir(), "kiln-openapi-client-"));
  schema = astToString(await openapiTS(spec as never));
  writeFileSync(path.join(dir, "schema.ts"), schema);
  writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify(STRICT_TSCONFIG, null, 2));
}, 360_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a client generated from /openapi.json", () => {
  it("has an operationId and a tag on every operation", () => {
    const operations = operationsOf(spec);
    expect(operations.length).toBeGreaterThan(40);
    for (const { method, path: p, operationId } of operations) {
      expect(operationId, `${method} ${p}`).toMatch(/^[a-z][A-Za-z]+$/);
      expect(spec.paths[p]![method]!.tags?.length, `${method} ${p}`).toBeGreaterThan(0);
    }
    expect(new Set(operations.map((o) => o.operationId)).size).toBe(operations.length);
  });

  it("type-checks a typed call to every operation under strict settings", { timeout: 120_000 }, () => {
    const tsc = typeCheck(clientSource(operationsOf(spec)));
    expect(`${tsc.stdout}${tsc.stderr}`).toBe("");
    expect(tsc.status).toBe(0);
    // The generated types really describe the document: every operation is in `operations`.
    for (const { operationId } of operationsOf(spec)) expect(schema).toContain(`    ${operationId}: {`);
  });

  it("fails to type-check a call to a path the document lacks", { timeout: 120_000 }, () => {
    const broken = `export const broken = (baseUrl: string) => api(baseUrl, "get", "/v1/missing", { params: {} });`;
    const tsc = typeCheck(`${clientSource(operationsOf(spec))}\n${broken}\n`);
    expect(tsc.status).not.toBe(0);
    expect(tsc.stdout).toContain('"/v1/missing"');
  });
});
