/**
 * Secrets as the build core reads them: checks at submission that referenced secrets exist
 * with their required keys, and the decrypted values of exactly a job's secrets at dispatch.
 * The HTTP routes (workers/routes/secrets.ts) and the Build object both call these.
 */
import { and, eq, inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import { chunk } from "../db/in-chunks.ts";
import { secrets } from "../db/schema/secrets.ts";
import { ApiError } from "../errors.ts";
import { decryptJson, secretAad } from "./secret-box.ts";

/** A secret's stored value: environment variable names to values. */
export const SecretValues = z.record(z.string(), z.string());

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
    const parsed = SecretValues.safeParse(await decryptJson(env, secretAad(workspaceId, name), row.ciphertext!));
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

/** 422 `secret_not_found`, naming the secret and the request that creates it. */
export function secretNotFound(name: string): ApiError {
  return new ApiError(
    422,
    "secret_not_found",
    `Secret '${name}' does not exist in this workspace. Create it with PUT /v1/secrets/${name}.`,
    { secret: name },
  );
}
