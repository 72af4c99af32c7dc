/**
 * `GET /v1/admin/status` (admin tokens): what `kiln doctor` checks on the server side. Are the
 * D1 migrations this Worker was built with all applied (`d1_migrations`, the table
 * `wrangler d1 migrations apply` keeps)? Are the Worker secrets and bindings in place? And,
 * with `?fleets=true`, is each enabled fleet reachable and does it accept our signature
 * (workers/fleet-probe.ts)? Answers 200 with `ok: false` and the failing parts rather than an
 * error, so one call shows everything that is wrong.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import journal from "../../migrations/meta/_journal.json";
import type { AppEnv } from "../app-env.ts";
import { authenticate } from "../auth/middleware.ts";
import { fleets } from "../db/schema/fleets.ts";
import { type ProbeResult, probeReachable, probeSigning } from "../fleet-probe.ts";
import { fleetSigningSecret } from "../fleets.ts";
import { bearerSecurity, errorResponses, registerBearerScheme, requireAdmin } from "./common.ts";

/** The admin status sub-app, mounted at the root. */
export const adminApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(adminApp);

/** Bindings the Worker cannot run without (wrangler.toml); the rate limiters are optional. */
const REQUIRED_BINDINGS = ["DB", "CONTEXTS", "LOGS", "REGISTRY", "LAYER_BUILD", "BUILD", "FLEET_SCHEDULER", "REGISTRY_UPLOAD"] as const;
const OPTIONAL_BINDINGS = ["RATE_LIMIT_IP", "RATE_LIMIT_TOKEN", "RATE_LIMIT_RUNNER"] as const;
// Probing many fleets at once would hold many sockets; six is the Workers connection limit.
const PROBE_CONCURRENCY = 6;
const MAX_PROBED_FLEETS = 100;

/** The migrations this Worker's code expects: drizzle-kit's journal, as file names `wrangler` records. */
export const EXPECTED_MIGRATIONS: readonly string[] = (journal as { entries: { tag: string }[] }).entries.map((e) => `${e.tag}.sql`);

/** Compares applied and expected migrations (pure). */
export function migrationStatus(expected: readonly string[], applied: readonly string[]) {
  const done = new Set(applied);
  const known = new Set(expected);
  const pending = expected.filter((name) => !done.has(name));
  // Applied but unknown to this code: the database is newer than the deployed Worker.
  const unknown = applied.filter((name) => !known.has(name));
  return { expected: expected.length, applied: applied.length, pending, unknown, current: pending.length === 0 && unknown.length === 0 };
}

const Probe = z.object({
  ok: z.boolean(),
  code: z.string(),
  status: z.number().int().nullable(),
  message: z.string(),
  durationMs: z.number(),
});
const StatusSchema = z
  .object({
    ok: z.boolean(),
    migrations: z.object({
      expected: z.number().int(),
      applied: z.number().int(),
      pending: z.array(z.string()),
      unknown: z.array(z.string()),
      current: z.boolean(),
      error: z.string().optional(),
    }),
    secrets: z.object({ KILN_ADMIN_TOKEN: z.boolean(), KILN_SECRET_KEY: z.enum(["ok", "missing", "invalid"]) }),
    bindings: z.object({ missing: z.array(z.string()), rateLimitsMissing: z.array(z.string()) }),
    fleets: z
      .array(z.object({ id: z.string(), name: z.string(), url: z.string(), reachable: Probe, signing: Probe }))
      .optional()
      .openapi({ description: "Present with `?fleets=true`: every enabled fleet (at most 100), probed." }),
  })
  .openapi("AdminStatus");

adminApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/admin/status",
    operationId: "getAdminStatus",
    tags: ["admin"],
    summary: "Deployment status (admin): migrations, secrets, bindings, fleets",
    description: "What `kiln doctor` checks on the server. `ok` is false when anything needs an operator; the failing parts say what.",
    security: bearerSecurity,
    middleware: [authenticate, requireAdmin] as const,
    request: {
      query: z.object({
        fleets: z
          .enum(["true", "false"])
          .optional()
          .openapi({ description: "Also probe every enabled fleet (reachability and signature)." }),
      }),
    },
    responses: {
      200: { description: "The status.", content: { "application/json": { schema: StatusSchema } } },
      ...errorResponses(400, 401, 403),
    },
  }),
  async (c) => {
    const env = c.env;
    const migrations = await readMigrations(env.DB);
    const secrets = { KILN_ADMIN_TOKEN: !!env.KILN_ADMIN_TOKEN, KILN_SECRET_KEY: secretKeyState(env.KILN_SECRET_KEY) };
    const bound = env as unknown as Record<string, unknown>;
    const bindings = {
      missing: REQUIRED_BINDINGS.filter((name) => bound[name] === undefined),
      rateLimitsMissing: OPTIONAL_BINDINGS.filter((name) => bound[name] === undefined),
    };
    const probed = c.req.valid("query").fleets === "true" ? await probeFleets(env) : undefined;
    const ok =
      migrations.current &&
      secrets.KILN_ADMIN_TOKEN &&
      secrets.KILN_SECRET_KEY === "ok" &&
      bindings.missing.length === 0 &&
      (probed ?? []).every((f) => f.reachable.ok && f.signing.ok);
    return c.json({ ok, migrations, secrets, bindings, ...(probed ? { fleets: probed } : {}) }, 200);
  },
);

async function readMigrations(db: D1Database) {
  try {
    const rows = await db.prepare("SELECT name FROM d1_migrations ORDER BY id").all<{ name: string }>();
    return migrationStatus(
      EXPECTED_MIGRATIONS,
      rows.results.map((r) => r.name),
    );
  } catch (error) {
    // No d1_migrations table: nothing was ever applied to this database.
    return { ...migrationStatus(EXPECTED_MIGRATIONS, []), error: String((error as Error)?.message ?? error).slice(0, 200) };
  }
}

function secretKeyState(encoded: string | undefined): "ok" | "missing" | "invalid" {
  if (!encoded) return "missing";
  try {
    return atob(encoded).length === 32 ? "ok" : "invalid";
  } catch {
    return "invalid";
  }
}

async function probeFleets(env: Env) {
  const rows = await drizzle(env.DB).select().from(fleets).where(isNull(fleets.disabledAt)).limit(MAX_PROBED_FLEETS).all();
  const results: { id: string; name: string; url: string; reachable: ProbeResult; signing: ProbeResult }[] = [];
  for (let i = 0; i < rows.length; i += PROBE_CONCURRENCY) {
    results.push(
      ...(await Promise.all(
        rows.slice(i, i + PROBE_CONCURRENCY).map(async (fleet) => {
          const reachable = await probeReachable(fleet.url);
          let signing: ProbeResult;
          try {
            signing = await probeSigning(fleet.url, await fleetSigningSecret(env, fleet));
          } catch (error) {
            signing = { ok: false, code: "secret_unreadable", status: null, message: String((error as Error).message), durationMs: 0 };
          }
          return { id: fleet.id, name: fleet.name, url: fleet.url, reachable, signing };
        }),
      )),
    );
  }
  return results;
}
