/**
 * Webhook subscriptions in D1 (`webhook_subscriptions`): create with a fresh Standard Webhooks
 * secret (stored only encrypted, returned once), list, read and delete within one workspace,
 * and what delivery needs (the URL and the opened secret). Every query names the workspace, so
 * another workspace's subscription is never found.
 */
import { newWebhookSecret, type WebhookEventType, type WebhookSubscription, type WebhookSubscriptionCreate } from "@kiln-build/protocol";
import { and, asc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import { webhookSubscriptions } from "../db/schema/webhooks.ts";
import { badRequest } from "../errors.ts";
import { decryptJson, encryptJson } from "../secrets/secret-box.ts";
import { checkWebhookUrl } from "./url-policy.ts";

/** A workspace has at most this many subscriptions (each finished image fans out to all of them). */
export const MAX_SUBSCRIPTIONS_PER_WORKSPACE = 25;

/** Additional data binding a subscription's secret ciphertext to the subscription. */
export function webhookAad(subscriptionId: string): string {
  return `kiln/webhook/${subscriptionId}`;
}

/** Whether this deployment may deliver to private addresses and over http (local development only). */
export function allowPrivateWebhooks(env: { WEBHOOKS_ALLOW_PRIVATE?: string }): boolean {
  return env.WEBHOOKS_ALLOW_PRIVATE === "true";
}

type Row = typeof webhookSubscriptions.$inferSelect;

/** The API's view of a row (never the secret). */
export function presentSubscription(row: Row): WebhookSubscription {
  return {
    id: row.id,
    url: row.url,
    events: row.events as WebhookEventType[],
    description: row.description,
    createdAt: row.createdAt.toISOString(),
  };
}

/** Creates a subscription after checking its URL; returns it with its secret (the only time the secret leaves the server). */
export async function createSubscription(
  env: Env,
  workspaceId: string,
  body: WebhookSubscriptionCreate,
): Promise<WebhookSubscription & { secret: string }> {
  const verdict = checkWebhookUrl(body.url, { allowPrivate: allowPrivateWebhooks(env) });
  if (!verdict.ok) throw badRequest(verdict.reason);
  const db = drizzle(env.DB);
  const existing = await db.$count(webhookSubscriptions, eq(webhookSubscriptions.workspaceId, workspaceId));
  if (existing >= MAX_SUBSCRIPTIONS_PER_WORKSPACE)
    throw badRequest(`A workspace has at most ${MAX_SUBSCRIPTIONS_PER_WORKSPACE} webhook subscriptions. Delete one first.`);
  const id = `wh_${crypto.randomUUID().replaceAll("-", "")}`;
  const secret = newWebhookSecret();
  const row = await db
    .insert(webhookSubscriptions)
    .values({
      id,
      workspaceId,
      url: verdict.url.href,
      events: body.events,
      description: body.description ?? null,
      secretCiphertext: await encryptJson(env, webhookAad(id), secret),
    })
    .returning()
    .get();
  return { ...presentSubscription(row), secret };
}

/** The workspace's subscriptions, oldest first. */
export async function listSubscriptions(env: Env, workspaceId: string): Promise<Row[]> {
  return drizzle(env.DB)
    .select()
    .from(webhookSubscriptions)
    .where(eq(webhookSubscriptions.workspaceId, workspaceId))
    .orderBy(asc(webhookSubscriptions.createdAt), asc(webhookSubscriptions.id))
    .all();
}

/** The workspace's subscription `id`, or null (also when another workspace owns it). */
export async function findSubscription(env: Env, workspaceId: string, id: string): Promise<Row | null> {
  const row = await drizzle(env.DB)
    .select()
    .from(webhookSubscriptions)
    .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.workspaceId, workspaceId)))
    .get();
  return row ?? null;
}

/** Deletes the workspace's subscription `id`; false when it has none by that id. */
export async function deleteSubscription(env: Env, workspaceId: string, id: string): Promise<boolean> {
  const row = await drizzle(env.DB)
    .delete(webhookSubscriptions)
    .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.workspaceId, workspaceId)))
    .returning({ id: webhookSubscriptions.id })
    .get();
  return row !== undefined;
}

/** What a delivery needs: the URL and the opened secret; null once the subscription was deleted. */
export async function deliveryTarget(env: Env, id: string): Promise<{ url: string; secret: string } | null> {
  const row = await drizzle(env.DB)
    .select({ url: webhookSubscriptions.url, sealed: webhookSubscriptions.secretCiphertext })
    .from(webhookSubscriptions)
    .where(eq(webhookSubscriptions.id, id))
    .get();
  if (!row) return null;
  const secret = z
    .string()
    .startsWith("whsec_")
    .parse(await decryptJson(env, webhookAad(id), row.sealed));
  return { url: row.url, secret };
}
