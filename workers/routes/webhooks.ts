/**
 * `/v1/webhooks`: a workspace's completion-notification subscriptions (decision 0017). Create
 * (the signing secret is answered once), list, read, delete, the delivery log, a test ping and
 * redelivery. Subscriptions live in D1 (workers/webhooks/store.ts); deliveries in the
 * subscription's WebhookDelivery object. Another workspace's subscription is always 404.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  WebhookDeliverySchema,
  WebhookSubscriptionCreatedSchema,
  WebhookSubscriptionCreateSchema,
  WebhookSubscriptionSchema,
} from "@kiln-build/protocol";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { ApiError, notFound } from "../errors.ts";
import { createSubscription, deleteSubscription, findSubscription, listSubscriptions, presentSubscription } from "../webhooks/store.ts";
import { bearerSecurity, errorResponses, jsonBodyLimit, OkSchema, registerBearerScheme } from "./common.ts";

/** The webhooks sub-app, mounted at the root. */
export const webhooksApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(webhooksApp);

const MAX_BODY_BYTES = 16 * 1024;
const Subscription = WebhookSubscriptionSchema.openapi("WebhookSubscription");
const Created = WebhookSubscriptionCreatedSchema.openapi("WebhookSubscriptionCreated");
const Delivery = WebhookDeliverySchema.openapi("WebhookDelivery");
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const IdParam = z.object({
  id: z
    .string()
    .regex(/^wh_[0-9a-f]{32}$/, "a webhook id (wh_...)")
    .openapi({ param: { name: "id", in: "path" }, example: "wh_0123456789abcdef0123456789abcdef" }),
});

webhooksApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/webhooks",
    operationId: "createWebhook",
    tags: ["webhooks"],
    summary: "Subscribe a URL to build completion events",
    description:
      "Events: `build.succeeded`, `build.failed`, `build.cancelled`, one per image when it reaches a final status. Deliveries are signed with Standard Webhooks using the `secret` in this answer, which is never shown again. The URL must be https on a public host (no loopback, private, link-local or metadata addresses).",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("webhooks:write"), jsonBodyLimit(MAX_BODY_BYTES)] as const,
    request: {
      body: {
        required: true,
        content: { "application/json": { schema: WebhookSubscriptionCreateSchema.openapi("WebhookSubscriptionCreate") } },
      },
    },
    responses: { 201: json(Created, "Subscribed; the secret is shown only now."), ...errorResponses(400, 401, 403, 404, 413, 503) },
  }),
  async (c) => {
    const created = await createSubscription(c.env, await workspaceOf(c), c.req.valid("json"));
    return c.json(created, 201);
  },
);

webhooksApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/webhooks",
    operationId: "listWebhooks",
    tags: ["webhooks"],
    summary: "List the workspace's webhook subscriptions (never their secrets)",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("webhooks:read")] as const,
    responses: { 200: json(z.object({ webhooks: z.array(Subscription) }), "Oldest first."), ...errorResponses(401, 403, 404) },
  }),
  async (c) => {
    const rows = await listSubscriptions(c.env, await workspaceOf(c));
    return c.json({ webhooks: rows.map(presentSubscription) }, 200);
  },
);

webhooksApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/webhooks/{id}",
    operationId: "getWebhook",
    tags: ["webhooks"],
    summary: "Read a webhook subscription",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("webhooks:read")] as const,
    request: { params: IdParam },
    responses: { 200: json(Subscription, "The subscription."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => c.json(presentSubscription(await ownSubscription(c, c.req.valid("param").id)), 200),
);

webhooksApp.openapi(
  createRoute({
    method: "delete",
    path: "/v1/webhooks/{id}",
    operationId: "deleteWebhook",
    tags: ["webhooks"],
    summary: "Delete a webhook subscription, its pending deliveries and its delivery log",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("webhooks:write")] as const,
    request: { params: IdParam },
    responses: { 200: json(OkSchema, "Deleted."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await deleteSubscription(c.env, await workspaceOf(c), id))) throw notFound(`Webhook '${id}'`);
    // After the row: an attempt starting now finds no subscription and stops.
    await c.env.WEBHOOK_DELIVERY.getByName(id).drop();
    return c.json({ ok: true as const }, 200);
  },
);

webhooksApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/webhooks/{id}/deliveries",
    operationId: "listWebhookDeliveries",
    tags: ["webhooks"],
    summary: "The subscription's delivery log: newest first, each delivery's attempts, next attempt and state",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("webhooks:read")] as const,
    request: {
      params: IdParam,
      query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(50) }),
    },
    responses: { 200: json(z.object({ deliveries: z.array(Delivery) }), "Newest first."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    await ownSubscription(c, id);
    const deliveries = await c.env.WEBHOOK_DELIVERY.getByName(id).list(c.req.valid("query").limit);
    return c.json({ deliveries }, 200);
  },
);

webhooksApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/webhooks/{id}/test",
    operationId: "testWebhook",
    tags: ["webhooks"],
    summary: "Send a `webhook.ping` event now (delivered and retried like any other)",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("webhooks:write")] as const,
    request: { params: IdParam },
    responses: { 202: json(z.object({ eventId: z.string() }), "Queued; see the delivery log."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    await ownSubscription(c, id);
    const eventId = `msg_${crypto.randomUUID().replaceAll("-", "")}`;
    const body = JSON.stringify({ type: "webhook.ping", timestamp: new Date().toISOString(), data: { subscriptionId: id } });
    await c.env.WEBHOOK_DELIVERY.getByName(id).enqueue({ subscriptionId: id, eventId, type: "webhook.ping", imageId: null, body });
    return c.json({ eventId }, 202);
  },
);

webhooksApp.openapi(
  createRoute({
    method: "post",
    path: "/v1/webhooks/{id}/deliveries/{eventId}/redeliver",
    operationId: "redeliverWebhook",
    tags: ["webhooks"],
    summary: "Deliver a finished delivery again (same event id and body), on a fresh retry schedule",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("webhooks:write")] as const,
    request: {
      params: IdParam.extend({
        eventId: z
          .string()
          .regex(/^msg_[0-9a-z]{1,64}$/)
          .openapi({ param: { name: "eventId", in: "path" } }),
      }),
    },
    responses: { 202: json(OkSchema, "Queued."), ...errorResponses(400, 401, 403, 404, 409) },
  }),
  async (c) => {
    const { id, eventId } = c.req.valid("param");
    await ownSubscription(c, id);
    const result = await c.env.WEBHOOK_DELIVERY.getByName(id).redeliver(eventId);
    if (!result.ok && result.error.code === "not_found") throw notFound(`Delivery '${eventId}'`);
    if (!result.ok) throw new ApiError(409, "delivery_pending", "This delivery is still being attempted; wait for it to finish.");
    return c.json({ ok: true as const }, 202);
  },
);

async function ownSubscription(c: Parameters<typeof workspaceOf>[0] & { env: Env }, id: string) {
  const row = await findSubscription(c.env, await workspaceOf(c), id);
  if (!row) throw notFound(`Webhook '${id}'`);
  return row;
}
