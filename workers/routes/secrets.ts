/**
 * Workspace secrets: write-only values, AES-GCM encrypted at rest (`../secrets/secret-box.ts`).
 * `PUT` replaces a secret's values, `GET` lists names and key names only, `DELETE` removes
 * it. What the build core reads of secrets lives in `../secrets/store.ts`. No value ever
 * reaches a response, an error or a log.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { SecretName } from "@kiln-build/protocol";
import { and, asc, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { secrets } from "../db/schema/secrets.ts";
import { notFound } from "../errors.ts";
import { encryptJson, secretAad } from "../secrets/secret-box.ts";
import { bearerSecurity, errorResponses, iso, jsonBodyLimit, OkSchema, registerBearerScheme } from "./common.ts";

/** The secrets sub-app, mounted at the root. */
export const secretsApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(secretsApp);

/** Keys become environment variables of build steps. */
const EnvKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,255}$/, "an environment variable name");
const MAX_BODY_BYTES = 256 * 1024;

const SecretSchema = z
  .object({ name: z.string(), keys: z.array(z.string()), createdAt: z.string(), updatedAt: z.string() })
  .openapi("Secret", { description: "A secret's name and key names; values are never returned." });
const NameParam = z.object({ name: SecretName.openapi({ param: { name: "name", in: "path" } }) });
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

secretsApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/secrets/{name}",
    operationId: "putSecret",
    tags: ["secrets"],
    summary: "Create or replace a secret",
    description: "Write-only: the response lists the key names, never the values.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("secrets:write"), jsonBodyLimit(MAX_BODY_BYTES)],
    request: {
      params: NameParam,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .object({
                values: z
                  .record(EnvKey, z.string().max(64 * 1024))
                  .refine((v) => Object.keys(v).length >= 1 && Object.keys(v).length <= 256, "1 to 256 keys"),
              })
              .strict()
              .openapi("SecretPut"),
          },
        },
      },
    },
    responses: { 200: json(SecretSchema, "Stored."), ...errorResponses(400, 401, 403, 413, 503) },
  }),
  async (c) => {
    const { name } = c.req.valid("param");
    const { values } = c.req.valid("json");
    const workspaceId = await workspaceOf(c);
    const keys = Object.keys(values).sort();
    const ciphertext = await encryptJson(c.env, secretAad(workspaceId, name), values);
    const row = await drizzle(c.env.DB)
      .insert(secrets)
      .values({ workspaceId, name, keys, ciphertext })
      .onConflictDoUpdate({
        target: [secrets.workspaceId, secrets.name],
        set: { keys, ciphertext, updatedAt: sql`(unixepoch('subsec') * 1000)` },
      })
      .returning()
      .get();
    return c.json(present(row!), 200);
  },
);

secretsApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/secrets",
    operationId: "listSecrets",
    tags: ["secrets"],
    summary: "List secrets (names and key names only)",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("secrets:read")],
    responses: { 200: json(z.object({ secrets: z.array(SecretSchema) }), "By name."), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const rows = await drizzle(c.env.DB)
      .select()
      .from(secrets)
      .where(eq(secrets.workspaceId, await workspaceOf(c)))
      .orderBy(asc(secrets.name))
      .all();
    return c.json({ secrets: rows.map(present) }, 200);
  },
);

secretsApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/secrets/{name}",
    operationId: "deleteSecret",
    tags: ["secrets"],
    summary: "Delete a secret",
    description: "Images already built keep working; new builds that reference it fail with 422.",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("secrets:write")],
    request: { params: NameParam },
    responses: { 200: json(OkSchema, "Deleted."), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const { name } = c.req.valid("param");
    const row = await drizzle(c.env.DB)
      .delete(secrets)
      .where(and(eq(secrets.workspaceId, await workspaceOf(c)), eq(secrets.name, name)))
      .returning({ name: secrets.name })
      .get();
    if (!row) throw notFound(`Secret '${name}'`);
    return c.json({ ok: true as const }, 200);
  },
);

function present(row: typeof secrets.$inferSelect) {
  return { name: row.name, keys: row.keys, createdAt: iso(row.createdAt), updatedAt: iso(row.updatedAt) };
}
