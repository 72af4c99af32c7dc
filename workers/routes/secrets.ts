/**
 * Workspace secrets: write-only values, AES-GCM encrypted at rest (`../secrets/secret-box.ts`).
 * `PUT` replaces a secret's values, `GET` lists names and key names only, `DELETE` removes
 * it. The build core calls `checkRequiredKeys` when an image is submitted and
 * `secretValuesForJob` when it dispatches. No value ever reaches a response, an error or a log.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { chunk } from "../db/in-chunks.ts";
import { secrets } from "../db/schema/secrets.ts";
import { ApiError, notFound } from "../errors.ts";
import { decryptJson, encryptJson, secretAad } from "../secrets/secret-box.ts";
import { bearerSecurity, errorResponses, iso, jsonBodyLimit, OkSchema, registerBearerScheme } from "./common.ts";

/** The secrets sub-app, mounted at the root. */
export const secretsApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(secretsApp);

/** Secret names, as `Secret.fromName` accepts them. */
export const SecretName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
/** Keys become environment variables of build steps. */
const EnvKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,255}$/, "an environment variable name");
const MAX_BODY_BYTES = 256 * 1024;
const Values = z.record(z.string(), z.string());

const SecretSchema = z
  .object({ name: z.string(), keys: z.array(z.string()), createdAt: z.string(), updatedAt: z.string() })
  .openapi("Secret", { description: "A secret's name and key names; values are never returned." });
const NameParam = z.object({ name: SecretName.openapi({ param: { name: "name", in: "path" } }) });
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

secretsApp.openapi(
  createRoute({
    method: "put",
    path: "/v1/secrets/{name}",
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

/**
 * Checks, at image submission, that every referenced secret exists in the workspace and holds
 * its `requiredKeys`. Throws 422 `secret_not_found` or `secret_missing_keys` naming the secret
 * and the missing key names (never values). One D1 query per 90 names, no decryption.
 */
export async function checkRequiredKeys(env: Env, workspaceId: string, refs: { name: string; requiredKeys: string[] }[]): Promise<void> {
  const rows = await selectSecrets(
    env,
    workspaceId,
    refs.map((r) => r.name),
    { withCiphertext: false },
  );
  const keysByName = new Map(rows.map((r) => [r.name, new Set(r.keys)]));
  for (const ref of refs) {
    const keys = keysByName.get(ref.name);
    if (!keys) throw secretNotFound(ref.name);
    const missing = ref.requiredKeys.filter((k) => !keys.has(k));
    if (missing.length > 0) {
      throw new ApiError(
        422,
        "secret_missing_keys",
        `Secret '${ref.name}' lacks required keys: ${missing.join(", ")}. Add them with PUT /v1/secrets/${ref.name}.`,
        {
          secret: ref.name,
          missingKeys: missing,
        },
      );
    }
  }
}

/**
 * The decrypted values of exactly the named secrets, for a dispatched job: `{ name: { KEY: value } }`.
 * Throws 422 `secret_not_found` naming a missing secret. The result must go only into the
 * signed job body, never into logs, errors or D1.
 */
export async function secretValuesForJob(env: Env, workspaceId: string, names: string[]): Promise<Record<string, Record<string, string>>> {
  const wanted = [...new Set(names)];
  const rows = await selectSecrets(env, workspaceId, wanted, { withCiphertext: true });
  const byName = new Map(rows.map((r) => [r.name, r]));
  const out: Record<string, Record<string, string>> = {};
  for (const name of wanted) {
    const row = byName.get(name);
    if (!row) throw secretNotFound(name);
    const parsed = Values.safeParse(await decryptJson(env, secretAad(workspaceId, name), row.ciphertext!));
    // Only possible if D1 was written by something else; say which secret, nothing more.
    if (!parsed.success) throw new Error(`Secret '${name}' of workspace ${workspaceId} decrypted to an unexpected shape.`);
    out[name] = parsed.data;
  }
  return out;
}

async function selectSecrets(env: Env, workspaceId: string, names: string[], { withCiphertext }: { withCiphertext: boolean }) {
  const unique = [...new Set(names)];
  if (unique.length === 0) return [];
  const db = drizzle(env.DB);
  const columns = { name: secrets.name, keys: secrets.keys, ...(withCiphertext ? { ciphertext: secrets.ciphertext } : {}) };
  const queries = chunk(unique).map((part) =>
    db
      .select(columns)
      .from(secrets)
      .where(and(eq(secrets.workspaceId, workspaceId), inArray(secrets.name, part))),
  );
  const results = await db.batch(queries as [(typeof queries)[number], ...(typeof queries)[number][]]);
  return results.flat() as { name: string; keys: string[]; ciphertext?: string }[];
}

function secretNotFound(name: string) {
  return new ApiError(
    422,
    "secret_not_found",
    `Secret '${name}' does not exist in this workspace. Create it with PUT /v1/secrets/${name}.`,
    { secret: name },
  );
}

function present(row: typeof secrets.$inferSelect) {
  return { name: row.name, keys: row.keys, createdAt: iso(row.createdAt), updatedAt: iso(row.updatedAt) };
}
