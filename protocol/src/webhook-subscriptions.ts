/**
 * Completion notifications (decision 0017): a workspace's webhook subscriptions, their delivery
 * log, and the body of the `build.*` events Kiln delivers, signed with Standard Webhooks
 * (`signWebhook` in webhooks.ts). The Worker validates and documents `/v1/webhooks` with these
 * schemas; the CLI takes its types from them; receivers may parse events with them.
 */
import { z } from "zod";
import { ImageStatusSchema } from "./api.ts";

/** Every event a subscription can ask for: one per image when it reaches a final status. */
export const WEBHOOK_EVENT_TYPES = ["build.succeeded", "build.failed", "build.cancelled"] as const;

/** One event type. */
export const WebhookEventTypeSchema = z.enum(WEBHOOK_EVENT_TYPES);

/** An event type. */
export type WebhookEventType = z.infer<typeof WebhookEventTypeSchema>;

/** Longest subscription URL accepted. */
export const WEBHOOK_URL_MAX_CHARS = 2048;

/** The body of `POST /v1/webhooks`. The URL's safety (https, public host) is checked by the server. */
export const WebhookSubscriptionCreateSchema = z
  .object({
    url: z.string().min(1).max(WEBHOOK_URL_MAX_CHARS),
    events: z
      .array(WebhookEventTypeSchema)
      .min(1)
      .max(WEBHOOK_EVENT_TYPES.length)
      .refine((events) => new Set(events).size === events.length, "each event at most once"),
    description: z.string().max(256).optional(),
  })
  .strict();

/** A subscription's create body. */
export type WebhookSubscriptionCreate = z.infer<typeof WebhookSubscriptionCreateSchema>;

/** A subscription as the API shows it (never its secret). */
export const WebhookSubscriptionSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(WebhookEventTypeSchema),
  description: z.string().nullable(),
  createdAt: z.string(),
});

/** A subscription. */
export type WebhookSubscription = z.infer<typeof WebhookSubscriptionSchema>;

/** The answer to `POST /v1/webhooks`: the subscription and its signing secret, shown only this once. */
export const WebhookSubscriptionCreatedSchema = WebhookSubscriptionSchema.extend({
  secret: z.string().regex(/^whsec_/),
});

/** A created subscription with its secret. */
export type WebhookSubscriptionCreated = z.infer<typeof WebhookSubscriptionCreatedSchema>;

/** One delivery attempt: when, the receiver's status code (null when none came), why it failed. */
export const WebhookAttemptSchema = z.object({
  at: z.string(),
  statusCode: z.number().int().nullable(),
  error: z.string().nullable(),
  durationMs: z.number().int(),
});

/** Where a delivery stands: retried until `delivered` (a 2xx) or `failed` (the schedule ran out). */
export const WebhookDeliveryStateSchema = z.enum(["pending", "delivered", "failed"]);

/** One event delivered (or being delivered) to one subscription. */
export const WebhookDeliverySchema = z.object({
  /** The event id, sent as `webhook-id`: the same on every attempt, so receivers can drop duplicates. */
  id: z.string(),
  type: z.string(),
  imageId: z.string().nullable(),
  createdAt: z.string(),
  state: WebhookDeliveryStateSchema,
  attemptCount: z.number().int(),
  attempts: z.array(WebhookAttemptSchema),
  nextAttemptAt: z.string().nullable(),
});

/** A delivery and its attempts. */
export type WebhookDelivery = z.infer<typeof WebhookDeliverySchema>;

/** The body of a `build.*` event. */
export const BuildEventSchema = z.object({
  type: WebhookEventTypeSchema,
  /** When the image reached its final status (ISO 8601). */
  timestamp: z.string(),
  data: z.object({
    imageId: z.string(),
    buildId: z.string().nullable(),
    /** The workspace's name. */
    workspace: z.string(),
    status: ImageStatusSchema,
    tags: z.array(z.object({ name: z.string(), reference: z.string().nullable() })),
    /** Where the image can be pulled: the top layer's pinned reference, then its tags' references. */
    references: z.array(z.string()),
    failure: z.object({ reason: z.string(), message: z.string(), exitCode: z.number().int().nullable() }).nullable(),
    /** The image's status page (shown to anyone only while a public tag points at the image). */
    url: z.string(),
  }),
});

/** A `build.*` event. */
export type BuildEvent = z.infer<typeof BuildEventSchema>;

/** The body of `POST /v1/webhooks/:id/test`'s delivery. */
export const PingEventSchema = z.object({
  type: z.literal("webhook.ping"),
  timestamp: z.string(),
  data: z.object({ subscriptionId: z.string() }),
});

/** The event type an image's final status notifies, or null while it is not final. */
export function eventTypeOfStatus(status: z.infer<typeof ImageStatusSchema>): WebhookEventType | null {
  switch (status) {
    case "succeeded":
      return "build.succeeded";
    // A timeout is a failure whose reason says so.
    case "failed":
    case "timeout":
      return "build.failed";
    case "cancelled":
      return "build.cancelled";
    default:
      return null;
  }
}
