// Test bootstrap for the build core (images, builds, runner events, objects): tenants and
// fleets written straight into D1, layer-spec factories, signed runner events, and the
// recording fleet endpoint started by test/node/fleet-recorder-setup.ts.
import { env, SELF } from "cloudflare:test";
import type { FleetPlatforms, Job, LayerSpec, RunnerEvent } from "@kiln-build/protocol";
import { newWebhookSecret, signWebhook } from "@kiln-build/protocol";
import { drizzle } from "drizzle-orm/d1";
import { inject } from "vitest";
import { generateToken, hashToken, SCOPES, type Scope } from "../../workers/auth/tokens.ts";
import { fleets } from "../../workers/db/schema/fleets.ts";
import { tokens, workspaces } from "../../workers/db/schema/workspaces.ts";
import { sealSigningSecret } from "../../workers/fleets.ts";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import { settleBuild } from "./object-probes.ts";

/** One request the recorder got (test/node/fleet-recorder.ts). */
export type Recorded = { fleet: string; mode: string; headers: Record<string, string>; body: string; receivedAtMs: number };

/** The origin tests send requests to; job references use its host. */
export const ORIGIN = "https://kiln.test";

let counter = 0;
const unique = (prefix: string) =>
  `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/** A workspace and an API token with `scopes`, written directly to D1. */
export async function newTenant(scopes: readonly Scope[] = SCOPES): Promise<{ workspaceId: string; workspaceName: string; token: string }> {
  const db = drizzle(env.DB);
  const workspaceId = unique("wsid");
  const workspaceName = unique("ws");
  const token = generateToken("api");
  await db.insert(workspaces).values({ id: workspaceId, name: workspaceName });
  await db
    .insert(tokens)
    .values({ id: unique("tok"), workspaceId, kind: "api", hash: await hashToken(token), name: "test", scopes: [...scopes] });
  return { workspaceId, workspaceName, token };
}

/** Another API token of an existing workspace. */
export async function newToken(workspaceId: string, scopes: readonly Scope[] = SCOPES): Promise<string> {
  const token = generateToken("api");
  await drizzle(env.DB)
    .insert(tokens)
    .values({ id: unique("tok"), workspaceId, kind: "api", hash: await hashToken(token), name: "test", scopes: [...scopes] });
  return token;
}

/** A distinct client address per request, so the per-address request budget (workers/rate-limit.ts) is not what a test measures. */
export function clientAddress(i: number): Record<string, string> {
  return { "cf-connecting-ip": `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` };
}

/** A fleet whose URL is the recorder, answering `mode` (202, 503 or 400). */
export type TestFleet = { id: string; name: string; secret: string; recorderKey: string };

/** Registers a fleet for the workspace (null: shared) that dispatches to the recording endpoint. */
export async function newFleet(
  workspaceId: string | null,
  options: {
    mode?: "accept" | "refuse" | "reject" | "redirect" | "hang";
    gpuTypes?: string[];
    maxConcurrentBuilds?: number;
    url?: string;
    /** Marked by an admin as trusted with secret values (default false, as for a new fleet). */
    trustedWithSecrets?: boolean;
    /** Platforms built natively and by emulation (default: linux/amd64 natively, as the column's default). */
    platforms?: FleetPlatforms;
  } = {},
): Promise<TestFleet> {
  const id = unique("fl");
  const recorderKey = unique("rec");
  const secret = newWebhookSecret();
  const url = options.url ?? `${inject("fleetRecorderUrl")}/fleet/${recorderKey}/${options.mode ?? "accept"}`;
  await drizzle(env.DB)
    .insert(fleets)
    .values({
      id,
      workspaceId,
      name: recorderKey,
      url,
      signingSecretEnc: await sealSigningSecret(env, id, secret),
      gpuTypes: options.gpuTypes ?? [],
      maxConcurrentBuilds: options.maxConcurrentBuilds ?? 4,
      trustedWithSecrets: options.trustedWithSecrets ?? false,
      ...(options.platforms ? { platforms: options.platforms } : {}),
    });
  return { id, name: recorderKey, secret, recorderKey };
}

/** The dispatches the recorder got for a fleet, waiting (event-driven, not polling) until there are `min`. */
export async function dispatches(fleet: TestFleet, min = 1): Promise<(Recorded & { job: Job })[]> {
  const response = await fetch(`${inject("fleetRecorderUrl")}/records?fleet=${fleet.recorderKey}&min=${min}&timeoutMs=15000`);
  const records = (await response.json()) as Recorded[];
  return records.map((r) => ({ ...r, job: JSON.parse(r.body) as Job }));
}

/** A new tenant with its own fleet and an uncached chain of `layers` submitted and dispatched: the job a runner would now build. */
export async function dispatchedBuild(layers = 2) {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  const submitted = await submitImage(t.token, chain(layers));
  await settle(submitted.body.buildId);
  const job = await nthJob(fleet, 1);
  return { t, fleet, submitted, job, buildId: submitted.body.buildId as string };
}

/** The `n`-th job (1-based) dispatched to a fleet, once it arrived. */
export async function nthJob(fleet: TestFleet, n = 1): Promise<Job> {
  const all = await dispatches(fleet, n);
  if (all.length < n) throw new Error(`fleet ${fleet.name} got ${all.length} dispatches, expected at least ${n}`);
  return all[n - 1]!.job;
}

/** A layer spec; `FROM base` unless `root`. */
export function layer(lines: string[], overrides: Partial<LayerSpec> = {}, root = false): LayerSpec {
  return {
    dockerfileCommands: [root ? "FROM busybox:1.36" : "FROM base", ...lines],
    context: null,
    secrets: [],
    gpu: null,
    buildArgs: {},
    registryAuth: null,
    buildFunction: null,
    pythonStandalone: null,
    forceBuild: false,
    ...overrides,
  };
}

/** A chain of `n` layers unique to `seed`, root first. */
export function chain(n: number, seed: string = unique("chain")): LayerSpec[] {
  return Array.from({ length: n }, (_, i) => layer([`RUN echo ${seed} layer ${i}`], {}, i === 0));
}

/** Options of `api`. */
export type ApiOptions = { token?: string | null; json?: unknown; headers?: Record<string, string> };

/** A request through the Worker's own fetch. */
export function api(method: string, path: string, options: ApiOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  return SELF.fetch(`${ORIGIN}${path}`, { method, headers, body: options.json === undefined ? undefined : JSON.stringify(options.json) });
}

/** `api` returning the status and parsed JSON body. */
export async function apiJson<T = any>(
  method: string,
  path: string,
  options: ApiOptions = {},
): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await api(method, path, options);
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T, headers: response.headers };
}

/** Submits an image chain. */
export function submitImage(token: string, layers: LayerSpec[], extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return apiJson("POST", "/v1/images", { token, json: { builderVersion: "2025.06", layers, ...extra }, headers });
}

/** The Build object of a build id. */
export function buildStub(buildId: string) {
  return env.BUILD.getByName(buildId);
}

/** Runs every due timer of a build (claims, slot, dispatch) and returns its snapshot. */
export async function settle(buildId: string) {
  return (await settleBuild(buildStub(buildId)))!;
}

/** Sends a runner event for `job`, signed with the fleet's secret (or as `options` override). */
export async function sendEvent(
  fleet: TestFleet,
  job: Pick<Job, "jobId" | "attemptId" | "fencingToken">,
  event: Record<string, unknown> & { type: RunnerEvent["type"] | "sbom" },
  options: { webhookId?: string; now?: Date; secret?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; webhookId: string }> {
  const body = JSON.stringify({ jobId: job.jobId, attemptId: job.attemptId, fencingToken: job.fencingToken, ...event });
  const webhookId = options.webhookId ?? unique("msg");
  const signed = signWebhook(options.secret ?? fleet.secret, webhookId, body, options.now);
  const response = await SELF.fetch(`${ORIGIN}/v1/runner/events`, {
    method: "POST",
    headers: { "content-type": "application/json", ...signed, ...options.headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, webhookId };
}

/** A fake manifest digest for layer `key`. */
export function digestFor(key: string, salt = ""): string {
  let hex = "";
  for (let i = 0; hex.length < 64; i++) hex += ((key.charCodeAt(i % key.length) + salt.length * 7 + i) % 16).toString(16);
  return `sha256:${hex}`;
}

/** Reports every layer of `job` built and the job succeeded, as a runner would; `salt` varies the digests (a rebuild). */
export async function completeJob(fleet: TestFleet, job: Job, salt = "", beforeSucceeded?: () => Promise<void>): Promise<void> {
  for (const e of [{ type: "accepted" }, { type: "started" }] as const) expectOk(await sendEvent(fleet, job, e));
  for (const l of job.layers) {
    // The orchestrator believes a layer result only when the registry holds it.
    await registerLayerImage(job, l, digestFor(l.key, salt));
    expectOk(
      await sendEvent(fleet, job, {
        type: "layer_succeeded",
        layerKey: l.key,
        digest: digestFor(l.key, salt),
        sizeBytes: 1000 + l.index,
        reference: l.target,
      }),
    );
  }
  await beforeSucceeded?.();
  expectOk(await sendEvent(fleet, job, { type: "succeeded" }));
}

function expectOk(result: { status: number; body: any }): void {
  if (result.status !== 200) throw new Error(`runner event refused: ${result.status} ${JSON.stringify(result.body)}`);
}

/** Makes a timer of a Durable Object due now (time cannot be advanced in workerd; the timer row can). */
export async function makeDue(stub: DurableObjectStub, timer: string): Promise<void> {
  const { runInDurableObject } = await import("cloudflare:test");
  await runInDurableObject(stub, (_instance: unknown, state: DurableObjectState) => {
    state.storage.sql.exec("UPDATE timers SET due_ms = 0 WHERE name = ?", timer);
  });
}
