/**
 * Runner fleets as the build core sees them: which fleets a workspace may dispatch to, which
 * of them may receive secret values (`trustedWithSecrets`, set only with `fleets:admin`), and
 * each fleet's Standard Webhooks signing secret (stored AES-GCM encrypted, opened here only).
 *
 * @example
 * for (const fleet of await listDispatchableFleets(env, workspaceId)) {
 *   const secret = await fleetSigningSecret(env, fleet);
 *   const headers = signWebhook(secret, attemptId, body);
 * }
 */

import { and, asc, eq, isNull, or, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import { fleets } from "./db/schema/fleets.ts";
import { decryptJson, encryptJson, fleetAad } from "./secrets/secret-box.ts";

/** A fleet row: `workspaceId` null means shared by every workspace; `signingSecretEnc` is ciphertext, never shown. */
export type Fleet = typeof fleets.$inferSelect;

/** A signing secret in Standard Webhooks format: `whsec_` + base64 of 24 to 64 bytes. */
export const SigningSecretSchema = z
  .string()
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, "expected whsec_ followed by base64")
  .refine((s) => {
    try {
      const n = atob(s.slice("whsec_".length)).length;
      return n >= 24 && n <= 64;
    } catch {
      return false;
    }
  }, "the base64 part must decode to 24-64 bytes");

/**
 * The fleets `workspaceId` may dispatch to: its own and the shared ones, not disabled; own
 * fleets first, then by age, so dispatch order is stable.
 */
export async function listDispatchableFleets(env: Env, workspaceId: string): Promise<Fleet[]> {
  return drizzle(env.DB)
    .select()
    .from(fleets)
    .where(and(isNull(fleets.disabledAt), or(eq(fleets.workspaceId, workspaceId), isNull(fleets.workspaceId))))
    .orderBy(sql`${fleets.workspaceId} is null`, asc(fleets.createdAt), asc(fleets.id))
    .all();
}

/**
 * The fleets a job may go to: all of `fleets` when it needs no secrets, else only those an
 * admin marked trusted with secrets (a fleet registered with `fleets:write` alone never is).
 */
export function fleetsForSecrets<F extends Pick<Fleet, "trustedWithSecrets">>(fleets: readonly F[], secretNames: readonly string[]): F[] {
  return secretNames.length === 0 ? [...fleets] : fleets.filter((f) => f.trustedWithSecrets);
}

/** The failure of a build that needs secrets when no enabled fleet is trusted with them; says how to fix it. */
export function secretsNeedTrustedFleetMessage(secretNames: readonly string[]): string {
  return (
    `secrets_need_trusted_fleet: this build's layers use secrets (${secretNames.join(", ")}), and no enabled fleet of the ` +
    "workspace is trusted with secrets. A token with the `fleets:admin` scope can trust one: " +
    '`PATCH /v1/fleets/<id>` with `{"trustedWithSecrets": true}`; then submit the build again.'
  );
}

/** The fleet with this id, whatever its workspace or state (runner events look fleets up by id), or null. */
export async function findFleet(env: Env, fleetId: string): Promise<Fleet | null> {
  return (await drizzle(env.DB).select().from(fleets).where(eq(fleets.id, fleetId)).get()) ?? null;
}

/**
 * The fleet's signing secret in clear. Throws (a 500: stored data or the key is wrong) if
 * it does not open; the error names the fleet, never the secret.
 */
export async function fleetSigningSecret(env: Env, fleet: Fleet): Promise<string> {
  let opened: unknown;
  try {
    opened = await decryptJson(env, fleetAad(fleet.id), fleet.signingSecretEnc);
  } catch (error) {
    throw new Error(`Signing secret of fleet ${fleet.id} does not decrypt (was KILN_SECRET_KEY changed?)`, { cause: error });
  }
  const parsed = SigningSecretSchema.safeParse(opened);
  if (!parsed.success) throw new Error(`Signing secret of fleet ${fleet.id} is not a whsec_ secret.`);
  return parsed.data;
}

/** The ciphertext to store for a fleet's signing secret (bound to the fleet id). */
export function sealSigningSecret(env: Env, fleetId: string, secret: string): Promise<string> {
  return encryptJson(env, fleetAad(fleetId), secret);
}
