/**
 * Runner fleets: register, list, read, update, disable and delete. A workspace registers its own
 * fleets; admins also register shared ones (`shared: true`, usable by every workspace). The
 * signing secret is write-only: generated with `newWebhookSecret()` when not given and then
 * returned once, stored AES-GCM encrypted with the fleet id as additional data.
 * Only fleets marked `trustedWithSecrets` receive builds that use secrets; marking one (or
 * moving a trusted one to another URL) needs `fleets:admin`, so `fleets:write` alone can never
 * send the workspace's secret values to a URL of its choosing.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { DisplayName, FleetPlatformsSchema, GPU_TYPES, newWebhookSecret } from "@kiln-build/protocol";
import { and, asc, eq, inArray, isNull, notExists, or } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv, AuthContext } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { builds } from "../db/schema/builds.ts";
import { fleets } from "../db/schema/fleets.ts";
import { conflict, forbidden, notFound } from "../errors.ts";
import { type Fleet, findFleet, SigningSecretSchema, sealSigningSecret } from "../fleets.ts";
import { bearerSecurity, errorResponses, iso, jsonBodyLimit, OkSchema, registerBearerScheme, workspaceOrNull } from "./common.ts";

/** The fleet admin sub-app, mounted at the root. */
export const fleetsApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(fleetsApp);

// "ANY" is something a layer asks for, not something a machine has.
const FLEET_GPU_TYPES = GPU_TYPES.filter((t) => t !== "ANY") as [string, ...string[]];

const FleetFields = {
  name: DisplayName,
  url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .openapi({ description: "The runner's dispatch endpoint (`POST /v1/jobs`).", example: "https://runners.example.com/v1/jobs" }),
  gpuTypes: z
    .array(z.enum(FLEET_GPU_TYPES))
    .max(FLEET_GPU_TYPES.length)
    .openapi({ description: "GPU types the fleet's machines have; [] for CPU only." }),
  maxConcurrentBuilds: z.number().int().min(1).max(10_000),
  platforms: FleetPlatformsSchema.refine(
    (p) => p.native.length + p.emulated.length > 0 && !p.native.some((n) => p.emulated.includes(n)),
    "offer at least one platform, each either native or emulated",
  ).openapi({
    description:
      "Platforms the fleet builds natively (its machines' architecture) and by QEMU emulation; the runner reports what it detects in `GET /v1/capabilities`. Default: linux/amd64 natively.",
    example: { native: ["linux/amd64"], emulated: ["linux/arm64"] },
  }),
  signingSecret: SigningSecretSchema.openapi({ description: "Standard Webhooks secret (`whsec_...`). Write-only." }),
  trustedWithSecrets: z.boolean().openapi({
    description:
      "Builds whose layers use secrets go only to trusted fleets, with the secret values. Setting it to true (and changing a trusted fleet's `url`) needs the `fleets:admin` scope.",
  }),
};

const FleetSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    url: z.string(),
    shared: z.boolean().openapi({ description: "Usable by every workspace; managed by admins." }),
    workspaceId: z.string().nullable(),
    gpuTypes: z.array(z.string()),
    platforms: FleetPlatformsSchema,
    maxConcurrentBuilds: z.number().int(),
    trustedWithSecrets: z.boolean(),
    createdAt: z.string(),
    disabledAt: z.string().nullable(),
  })
  .openapi("Fleet");
const FleetWithSecretSchema = FleetSchema.extend({
  signingSecret: z
    .string()
    .optional()
    .openapi({ description: "Present only when the server generated the secret: shown once, store it in the runner's config now." }),
}).openapi("FleetWithSecret");

const CreateBody = z
  .object({
    name: FleetFields.name,
    url: FleetFields.url,
    gpuTypes: FleetFields.gpuTypes.default([]),
    maxConcurrentBuilds: FleetFields.maxConcurrentBuilds,
    platforms: FleetFields.platforms.optional(),
    signingSecret: FleetFields.signingSecret.optional(),
    trustedWithSecrets: FleetFields.trustedWithSecrets.default(false),
    shared: z.boolean().default(false).openapi({ description: "Admin only: a fleet every workspace can use." }),
  })
  .strict()
  .openapi("FleetCreate");

const UpdateBody = z
  .object({
    name: FleetFields.name.optional(),
    url: FleetFields.url.optional(),
    gpuTypes: FleetFields.gpuTypes.optional(),
    maxConcurrentBuilds: FleetFields.maxConcurrentBuilds.optional(),
    platforms: FleetFields.platforms.optional(),
    disabled: z.boolean().optional().openapi({ description: "true stops dispatching to the fleet; false enables it again." }),
    trustedWithSecrets: FleetFields.trustedWithSecrets.optional(),
    signingSecret: FleetFields.signingSecret.optional(),
    rotateSigningSecret: z.literal(true).optional().openapi({ description: "Generate a new secret and return it once." }),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, "Send at least one field to change.")
  .refine((b) => !(b.signingSecret && b.rotateSigningSecret), "Send either signingSecret or rotateSigningSecret, not both.")
  .openapi("FleetUpdate");

const IdParam = z.object({
  id: z
    .string()
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

fleetsApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/fleets",
    operationId: "createFleet",
    tags: ["fleets"],
    summary: "Register a runner fleet",
    description: "`trustedWithSecrets: true` needs the `fleets:admin` scope; without it the fleet receives no builds that use secrets.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("fleets:write"), jsonBodyLimit(16 * 1024)],
    request: { body: { required: true, content: { "application/json": { schema: CreateBody } } } },
    responses: { 201: json(FleetWithSecretSchema, "Registered."), ...errorResponses(400, 401, 403, 404, 413, 503) },
  }),
  async (c) => {
    const body = c.req.valid("json");
    if (body.shared && c.get("auth").kind !== "admin") throw forbidden("Only admin tokens can register shared fleets.");
    if (body.trustedWithSecrets) requireFleetAdmin(c.get("auth"), "Registering a fleet trusted with secrets");
    const workspaceId = body.shared ? null : await workspaceOf(c);
    const id = `flt_${crypto.randomUUID().replaceAll("-", "")}`;
    const generated = body.signingSecret ? undefined : newWebhookSecret();
    const signingSecretEnc = await sealSigningSecret(c.env, id, body.signingSecret ?? generated!);
    const row = await drizzle(c.env.DB)
      .insert(fleets)
      .values({
        id,
        workspaceId,
        name: body.name,
        url: body.url,
        signingSecretEnc,
        gpuTypes: [...new Set(body.gpuTypes)],
        maxConcurrentBuilds: body.maxConcurrentBuilds,
        ...(body.platforms && { platforms: body.platforms }),
        trustedWithSecrets: body.trustedWithSecrets,
      })
      .returning()
      .get();
    return c.json({ ...present(row), ...(generated ? { signingSecret: generated } : {}) }, 201);
  },
);

fleetsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/fleets",
    operationId: "listFleets",
    tags: ["fleets"],
    summary: "List fleets",
    description: "The workspace's fleets and the shared ones; an admin caller without `x-kiln-workspace` sees every fleet.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("fleets:read")],
    responses: { 200: json(z.object({ fleets: z.array(FleetSchema) }), "Fleets, oldest first."), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const workspaceId = await workspaceOrNull(c);
    const query = drizzle(c.env.DB).select().from(fleets);
    const rows = await (workspaceId ? query.where(or(eq(fleets.workspaceId, workspaceId), isNull(fleets.workspaceId))) : query)
      .orderBy(asc(fleets.createdAt), asc(fleets.id))
      .all();
    return c.json({ fleets: rows.map(present) }, 200);
  },
);

fleetsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/fleets/{id}",
    operationId: "getFleet",
    tags: ["fleets"],
    summary: "Read a fleet",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("fleets:read")],
    request: { params: IdParam },
    responses: { 200: json(FleetSchema, "The fleet (never its secret)."), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const fleet = await visibleFleet(c, c.req.valid("param").id);
    return c.json(present(fleet), 200);
  },
);

fleetsApp.openapi(
  createRoute({
    method: "patch",
    path: "/v1/fleets/{id}",
    operationId: "updateFleet",
    tags: ["fleets"],
    summary: "Update, disable, enable or re-key a fleet",
    description:
      "Shared fleets can be changed by admins only. In-flight builds on a disabled fleet run to the end; no new ones are dispatched. `trustedWithSecrets: true`, and a new `url` for a fleet trusted with secrets, need the `fleets:admin` scope (or send `trustedWithSecrets: false` with the new `url`).",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("fleets:write"), jsonBodyLimit(16 * 1024)],
    request: { params: IdParam, body: { required: true, content: { "application/json": { schema: UpdateBody } } } },
    responses: { 200: json(FleetWithSecretSchema, "Updated."), ...errorResponses(400, 401, 403, 404, 409, 413, 503) },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const fleet = await visibleFleet(c, c.req.valid("param").id);
    if (fleet.workspaceId === null && c.get("auth").kind !== "admin") throw forbidden("Shared fleets are managed by admins.");
    if (body.trustedWithSecrets) requireFleetAdmin(c.get("auth"), "Trusting a fleet with secrets");
    const staysTrusted = body.trustedWithSecrets ?? fleet.trustedWithSecrets;
    if (staysTrusted && body.url !== undefined && body.url !== fleet.url)
      requireFleetAdmin(c.get("auth"), "Changing the URL of a fleet trusted with secrets (or send `trustedWithSecrets: false` with it)");
    const generated = body.rotateSigningSecret ? newWebhookSecret() : undefined;
    const secret = body.signingSecret ?? generated;
    const changes: Partial<typeof fleets.$inferInsert> = {
      ...(body.name !== undefined && { name: body.name }),
      ...(body.url !== undefined && { url: body.url }),
      ...(body.gpuTypes !== undefined && { gpuTypes: [...new Set(body.gpuTypes)] }),
      ...(body.platforms !== undefined && { platforms: body.platforms }),
      ...(body.maxConcurrentBuilds !== undefined && { maxConcurrentBuilds: body.maxConcurrentBuilds }),
      ...(body.disabled !== undefined && { disabledAt: body.disabled ? (fleet.disabledAt ?? new Date()) : null }),
      ...(body.trustedWithSecrets !== undefined && { trustedWithSecrets: body.trustedWithSecrets }),
      ...(secret !== undefined && { signingSecretEnc: await sealSigningSecret(c.env, fleet.id, secret) }),
    };
    // Conditional on the URL and trust read above: the checks hold for the row that is changed.
    const row = await drizzle(c.env.DB)
      .update(fleets)
      .set(changes)
      .where(and(eq(fleets.id, fleet.id), eq(fleets.url, fleet.url), eq(fleets.trustedWithSecrets, fleet.trustedWithSecrets)))
      .returning()
      .get();
    if (!row) {
      if (!(await findFleet(c.env, fleet.id))) throw notFound(`Fleet '${fleet.id}'`);
      throw conflict("fleet_changed", "The fleet was changed by another request meanwhile; read it again and retry.");
    }
    return c.json({ ...present(row), ...(generated ? { signingSecret: generated } : {}) }, 200);
  },
);

// Statuses in which a build holds one of the fleet's slots and a runner may be working on it.
const BUSY_STATUSES = ["dispatching", "running"] as const;

fleetsApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/fleets/{id}",
    operationId: "deleteFleet",
    tags: ["fleets"],
    summary: "Delete a fleet",
    description:
      "Refused with 409 `fleet_busy` while a build is dispatched to the fleet or running on it: disable the fleet first (`PATCH` with `disabled: true`), let those builds finish, then delete. Builds still queued for the fleet are dispatched to another one (or fail if none is left). Shared fleets can be deleted by admins only.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("fleets:write")],
    request: { params: IdParam },
    responses: { 200: json(OkSchema, "Deleted."), ...errorResponses(401, 403, 404, 409) },
  }),
  async (c) => {
    const fleet = await visibleFleet(c, c.req.valid("param").id);
    if (fleet.workspaceId === null && c.get("auth").kind !== "admin") throw forbidden("Shared fleets are managed by admins.");
    const db = drizzle(c.env.DB);
    // One statement: a build dispatched between a check and the delete would lose its fleet.
    const busy = db
      .select({ id: builds.id })
      .from(builds)
      .where(and(eq(builds.fleetId, fleet.id), inArray(builds.status, [...BUSY_STATUSES])));
    const row = await db
      .delete(fleets)
      .where(and(eq(fleets.id, fleet.id), notExists(busy)))
      .returning({ id: fleets.id })
      .get();
    if (!row) {
      if (!(await findFleet(c.env, fleet.id))) throw notFound(`Fleet '${fleet.id}'`);
      throw conflict("fleet_busy", "Builds are dispatched to or running on this fleet. Disable it, wait for them to finish, then delete.");
    }
    return c.json({ ok: true as const }, 200);
  },
);

/** Requires the scope that may direct the workspace's secret values to a fleet (admin tokens hold it). */
function requireFleetAdmin(auth: AuthContext, what: string): void {
  if (auth.kind === "admin" || auth.scopes.includes("fleets:admin")) return;
  throw forbidden(`${what} needs the \`fleets:admin\` scope: such a fleet receives secret values.`);
}

/** The fleet if the caller may see it (own workspace's, shared, or any for admins); else 404. */
async function visibleFleet(c: Parameters<typeof workspaceOrNull>[0] & { env: Env }, id: string): Promise<Fleet> {
  const fleet = await findFleet(c.env, id);
  const auth = c.get("auth");
  const visible = fleet && (auth.kind === "admin" || fleet.workspaceId === null || fleet.workspaceId === auth.workspaceId);
  if (!fleet || !visible) throw notFound(`Fleet '${id}'`);
  return fleet;
}

function present(row: Fleet) {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    shared: row.workspaceId === null,
    workspaceId: row.workspaceId,
    gpuTypes: row.gpuTypes,
    platforms: row.platforms,
    maxConcurrentBuilds: row.maxConcurrentBuilds,
    trustedWithSecrets: row.trustedWithSecrets,
    createdAt: iso(row.createdAt),
    disabledAt: iso(row.disabledAt),
  };
}
