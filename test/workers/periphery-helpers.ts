// Test bootstrap for the admin, secrets, contexts, tags and badges routes: requests through the
// Worker's own fetch (SELF), fresh workspaces and tokens made through the real API.
import { env, SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { hashToken, SCOPES, type Scope } from "../../workers/auth/tokens.ts";
import { type BuildStatusColumn, builds } from "../../workers/db/schema/builds.ts";
import { images } from "../../workers/db/schema/images.ts";
import { jobTokens } from "../../workers/db/schema/job-tokens.ts";

/** The bootstrap admin token vitest.config.ts binds as KILN_ADMIN_TOKEN. */
export const ADMIN = "kiln-test-admin-token-0123456789abcdef";

/** Options of `call`. */
export type CallOptions = { token?: string | null; json?: unknown; body?: BodyInit; headers?: Record<string, string>; workspace?: string };

/** Sends a request through the Worker's fetch; `token: null` sends no Authorization header. */
export function call(method: string, path: string, options: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== null) headers.authorization = `Bearer ${options.token ?? ADMIN}`;
  if (options.workspace) headers["x-kiln-workspace"] = options.workspace;
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers["content-type"] ??= "application/json";
  }
  return SELF.fetch(`https://kiln.test${path}`, { method, headers, body });
}

/** `call` and parse the JSON answer, asserting the status. */
export async function callJson<T = any>(method: string, path: string, status: number, options: CallOptions = {}): Promise<T> {
  const response = await call(method, path, options);
  const text = await response.text();
  if (response.status !== status) throw new Error(`${method} ${path}: expected ${status}, got ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

let counter = 0;

/** A new workspace with a unique name. */
export async function newWorkspace(prefix = "ws"): Promise<{ id: string; name: string }> {
  const name = `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  return callJson("POST", "/v1/workspaces", 201, { json: { name } });
}

/** A new workspace and an API token for it holding `scopes` (all by default). */
export async function newTenant(scopes: readonly Scope[] = SCOPES): Promise<{ workspace: { id: string; name: string }; token: string }> {
  const workspace = await newWorkspace();
  const created = await callJson<{ token: string }>("POST", "/v1/tokens", 201, {
    workspace: workspace.name,
    json: { name: "test", scopes },
  });
  return { workspace, token: created.token };
}

/** `sha256:<hex>` of bytes. */
export async function sha256Digest(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${[...hash].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Deterministic pseudo-random bytes (tests never depend on chance). */
export function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * An image row (and, with `buildStatus`, its build's D1 projection) written with the build
 * core's drizzle schema, for tag and badge tests that need no real build.
 */
export async function insertImage(workspaceId: string, buildStatus: BuildStatusColumn | null = null): Promise<string> {
  const db = drizzle(env.DB);
  const id = `im-${crypto.randomUUID().replaceAll("-", "").slice(0, 26)}`;
  const key = "a".repeat(64);
  let buildId: string | null = null;
  if (buildStatus !== null) {
    buildId = `bd-${crypto.randomUUID().replaceAll("-", "").slice(0, 26)}`;
    await db.insert(builds).values({ id: buildId, workspaceId, topKey: key, layerKeys: [key], mode: "normal", status: buildStatus });
  }
  await db.insert(images).values({ id, workspaceId, layerKeys: [key], topKey: key, buildId, freshFrom: 1 });
  return id;
}

/** Sets the D1 projection of an image's build to `status` (what the build object does as it runs). */
export async function setBuildStatus(imageId: string, status: BuildStatusColumn): Promise<void> {
  const db = drizzle(env.DB);
  const image = await db.select({ buildId: images.buildId }).from(images).where(eq(images.id, imageId)).get();
  await db.update(builds).set({ status }).where(eq(builds.id, image!.buildId!));
}

/** A job token as the build core mints it (only its sha256 is stored); returns the bearer value. */
export async function insertJobToken(workspaceId: string, options: { actions?: string[]; expiresInMs?: number } = {}): Promise<string> {
  const token = `job_${crypto.randomUUID().replaceAll("-", "")}`;
  await drizzle(env.DB)
    .insert(jobTokens)
    .values({
      hash: await hashToken(token),
      workspaceId,
      jobId: `bd-${crypto.randomUUID().slice(0, 8)}`,
      actions: options.actions ?? ["pull", "push", "context:read"],
      expiresAt: new Date(Date.now() + (options.expiresInMs ?? 3_600_000)),
    });
  return token;
}
