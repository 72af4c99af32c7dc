// Security review "Tenant isolation and trust", C: a property-based fuzz of the HTTP edge on the
// real stack (wrangler dev). Every operation of /openapi.json and every /v2 registry route is
// driven with generated malformed requests (edge-fuzz-requests.ts), and every answer must hold:
// no 5xx; a JSON error body has the documented shape (`{ error: { code, message, details? } }`,
// on /v2 the OCI `{ errors: [{ code, message, detail? }] }`); and no answer to a request
// without a valid credential is larger than 16 KiB (public documents excepted).
//
// Deterministic: seeded (KILN_FUZZ_SEED, default below), each operation with its own derived
// seed; a failure prints the seed, the operation and the shrunk request. KILN_FUZZ_RUNS sets the
// runs per operation.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { newWorkspace, type StackInfo, sharedStack, type Tenant } from "../node/e2e-stack.ts";
import {
  authenticated,
  authorization,
  type FuzzRequest,
  fieldNamesOf,
  type Operation,
  operationsOf,
  requestsFor,
} from "./edge-fuzz-requests.ts";

const SEED = Number(process.env.KILN_FUZZ_SEED ?? 0x6b696c6e);
const RUNS_PER_OPERATION = Number(process.env.KILN_FUZZ_RUNS ?? 16);
/** Largest answer to a request without a valid credential. */
const UNAUTHENTICATED_MAX_BYTES = 16 * 1024;
/** Public documents that are large by design (GET only). */
const PUBLIC_DOCUMENTS = new Set(["/openapi.json", "/docs"]);

let stack: StackInfo;
let tenant: Tenant;
let operations: Operation[];
let fields: string[];

beforeAll(async () => {
  // KILN_FUZZ_STACK=<state.json of a running stack> replays against it (debugging); else the run's shared stack.
  stack = process.env.KILN_FUZZ_STACK ? (JSON.parse(readFileSync(process.env.KILN_FUZZ_STACK, "utf8")) as StackInfo) : await sharedStack();
  tenant = await newWorkspace(stack, "fuzz");
  const response = await fetch(`${stack.url}/openapi.json`);
  expect(response.status).toBe(200);
  const spec = (await response.json()) as Parameters<typeof operationsOf>[0];
  operations = operationsOf(spec);
  fields = fieldNamesOf(spec);
}, 360_000);

type Answer = { status: number; contentType: string; requestId: string | null; bytes: Uint8Array };

/**
 * Sends a request. An answer that leaves a large request body unread (an early 401 or 404) may
 * close the connection while the client still sends: fetch then fails ("terminated"), or
 * `wrangler dev`'s proxy in front of the Worker loses its connection and answers 500 "Network
 * connection lost" itself. Neither is the Worker's answer (its answers all carry `x-request-id`,
 * workers/log.ts), so such a request is sent again, at most 3 times. A 5xx the Worker gave is
 * never retried.
 */
async function send(request: FuzzRequest): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    let answer: Answer;
    try {
      answer = await sendOnce(request);
    } catch (error) {
      if (attempt === 3) throw error;
      continue;
    }
    const fromDevProxy =
      answer.status >= 500 && !answer.requestId && /Network connection lost/.test(new TextDecoder().decode(answer.bytes));
    if (!fromDevProxy || attempt === 3) return answer;
  }
}

async function sendOnce(request: FuzzRequest): Promise<Answer> {
  const auth = authorization(request.auth, tenant.token);
  const response = await fetch(`${stack.url}${request.path}`, {
    method: request.method,
    headers: { ...request.headers, ...(auth === undefined ? {} : { authorization: auth }) },
    body: request.body as Uint8Array<ArrayBuffer> | undefined,
    redirect: "manual",
    signal: AbortSignal.timeout(15_000),
  });
  return {
    status: response.status,
    contentType: response.headers.get("content-type") ?? "",
    requestId: response.headers.get("x-request-id"),
    bytes: new Uint8Array(await response.arrayBuffer()),
  };
}

/** What is wrong with an answer, or null. */
function problemWith(request: FuzzRequest, answer: Answer): string | null {
  // The path the server routes: the URL parser resolves `%2e%2e` and `..` segments before it does.
  const path = new URL(request.path, stack.url).pathname;
  if (answer.status >= 500) return `answered ${answer.status}: ${new TextDecoder().decode(answer.bytes.slice(0, 300))}`;
  const unauthenticated = !authenticated(request.auth);
  const publicDocument = request.method === "GET" && answer.status < 400 && PUBLIC_DOCUMENTS.has(path);
  if (unauthenticated && !publicDocument && answer.bytes.byteLength > UNAUTHENTICATED_MAX_BYTES) {
    return `answered ${answer.bytes.byteLength} bytes to a request without a valid credential`;
  }
  if (answer.status < 400 || answer.bytes.byteLength === 0) return null;
  if (!/json/i.test(answer.contentType)) return `error body is ${answer.contentType || "untyped"}, not JSON`;
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(answer.bytes));
  } catch {
    return "error body is not UTF-8 JSON";
  }
  return path.startsWith("/v2") ? ociErrorProblem(body) : apiErrorProblem(body);
}

function apiErrorProblem(body: unknown): string | null {
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  if (!error || Object.keys(body as object).length !== 1) return `not { error }: ${JSON.stringify(body).slice(0, 200)}`;
  if (typeof error.code !== "string" || typeof error.message !== "string") return "error.code and error.message must be strings";
  const extra = Object.keys(error).filter((k) => k !== "code" && k !== "message" && k !== "details");
  return extra.length > 0 ? `unexpected error fields ${extra.join(", ")}` : null;
}

function ociErrorProblem(body: unknown): string | null {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return `not { errors: [...] }: ${JSON.stringify(body).slice(0, 200)}`;
  for (const e of errors as Record<string, unknown>[]) {
    if (typeof e?.code !== "string" || typeof e.message !== "string") return "each OCI error needs a string code and message";
  }
  return null;
}

function describeRequest(r: FuzzRequest): string {
  const body = r.body === undefined ? "no body" : `${r.body.byteLength} bytes: ${new TextDecoder().decode(r.body.slice(0, 120))}`;
  return `${r.method} ${r.path.slice(0, 300)} auth=${r.auth} headers=${JSON.stringify(r.headers).slice(0, 300)} ${body}`;
}

describe("the HTTP edge under generated malformed requests", () => {
  it("covers every documented operation and the registry", () => {
    expect(operations.length).toBeGreaterThanOrEqual(55);
    expect(operations.some((o) => o.path === "/v1/runner/events")).toBe(true);
    expect(operations.filter((o) => o.registry).length).toBeGreaterThanOrEqual(17);
  });

  it("never answers 5xx, keeps the error shapes and bounds answers to unauthenticated requests", { timeout: 120_000 }, async () => {
    const started = Date.now();
    for (const [i, op] of operations.entries()) {
      const seed = SEED + i;
      let failure: string | null = null;
      const property = fc.asyncProperty(requestsFor(op, fields), async (request) => {
        const problem = problemWith(request, await send(request));
        if (problem) failure = `${problem}\n  request: ${describeRequest(request)}`;
        return problem === null;
      });
      const result = await fc.check(property, { seed, numRuns: RUNS_PER_OPERATION, endOnFailure: false });
      if (result.failed) {
        const message = `fuzz failure on ${op.method} ${op.path} (KILN_FUZZ_SEED=${SEED}, operation seed ${seed}, path ${result.counterexamplePath}):\n  ${failure ?? result.errorInstance}`;
        console.error(message);
        expect.fail(message);
      }
    }
    console.log(`fuzzed ${operations.length} operations x ${RUNS_PER_OPERATION} runs in ${Date.now() - started} ms (seed ${SEED})`);
  });
});
