/**
 * Completion notifications, the enqueue side (decision 0017): when an image reaches a final
 * status, one `build.*` event per subscription of its workspace that asked for that type, handed
 * to the subscription's WebhookDelivery object, which delivers and retries it. Called where an
 * image becomes final: the Build object's outbox after it wrote the final `builds` row (every
 * image of the build, joined ones included) and `POST /v1/images` for images final at
 * submission (fully cached, a memoised failure, a build that ended before the image row was
 * written). Both may run more than once for one image: the event id is derived from
 * (subscription, image, type) and the object keeps the first, so each is enqueued exactly once.
 */
import {
  type BuildEvent,
  eventTypeOfStatus,
  type ImageStatus,
  type LayerView,
  sha256Hex,
  type WebhookEventType,
} from "@kiln-build/protocol";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { images } from "../db/schema/images.ts";
import { imageTags } from "../images/oci-tags.ts";
import { loadImageView } from "../images/store.ts";
import type { ImageFailure } from "../images/view.ts";
import { listSubscriptions } from "./store.ts";

/** Where an image lives: its workspace and the origin its status page and pull references use. */
export type NotifyScope = { workspaceId: string; workspaceName: string; origin: string };

/** What an event says about a final image. */
export type FinalImage = {
  id: string;
  buildId: string | null;
  status: ImageStatus;
  failure: Pick<ImageFailure, "reason" | "message" | "exitCode"> | null;
  layers: Pick<LayerView, "reference">[];
  tags: { name: string; reference: string | null }[];
};

type Subscription = { id: string; events: string[] };

/** The event for a final image, or null while it is not final. Pure. */
export function buildEvent(image: FinalImage, scope: NotifyScope, nowMs: number): BuildEvent | null {
  const type = eventTypeOfStatus(image.status);
  if (!type) return null;
  const top = image.layers.at(-1)?.reference ?? null;
  const tagged = image.tags.flatMap((t) => (t.reference ? [t.reference] : []));
  return {
    type,
    timestamp: new Date(nowMs).toISOString(),
    data: {
      imageId: image.id,
      buildId: image.buildId,
      workspace: scope.workspaceName,
      status: image.status,
      tags: image.tags,
      references: image.status === "succeeded" ? [...(top ? [top] : []), ...tagged] : [],
      failure: image.failure ? { reason: image.failure.reason, message: image.failure.message, exitCode: image.failure.exitCode } : null,
      url: `${scope.origin}/images/${encodeURIComponent(image.id)}`,
    },
  };
}

/** The `webhook-id` of an event: the same for the same (subscription, image, type), whoever enqueues it. */
export async function eventId(subscriptionId: string, imageId: string, type: WebhookEventType): Promise<string> {
  return `msg_${(await sha256Hex(`${subscriptionId}/${imageId}/${type}`)).slice(0, 40)}`;
}

/** Enqueues the event of every image of a finished build (called after its final `builds` row is written). */
export async function notifyBuildEnded(env: Env, buildId: string, scope: NotifyScope): Promise<void> {
  const subscriptions = await listSubscriptions(env, scope.workspaceId);
  if (subscriptions.length === 0) return;
  const rows = await drizzle(env.DB)
    .select({ id: images.id })
    .from(images)
    .where(and(eq(images.buildId, buildId), eq(images.workspaceId, scope.workspaceId)))
    .all();
  for (const { id } of rows) await notifyImage(env, id, scope, subscriptions);
}

/**
 * Enqueues the event of one image if it is final (its status read from D1 as the API shows it).
 * `subscriptions` saves the lookup when the caller has them.
 */
export async function notifyImage(env: Env, imageId: string, scope: NotifyScope, subscriptions?: Subscription[]): Promise<void> {
  const subs = subscriptions ?? (await listSubscriptions(env, scope.workspaceId));
  if (subs.length === 0) return;
  const view = await loadImageView(env.DB, scope.workspaceId, imageId);
  const type = view ? eventTypeOfStatus(view.status) : null;
  if (!view || !type) return;
  const wanted = subs.filter((s) => s.events.includes(type));
  if (wanted.length === 0) return;
  const tags = await imageTags(env, scope.origin, scope.workspaceId, imageId);
  const event = buildEvent({ ...view, tags }, scope, Date.now())!;
  await enqueueEvent(env, wanted, imageId, event);
}

/**
 * Enqueues `build.succeeded` for an image answered fully from the cache at submission (no build,
 * no D1 read beyond the subscriptions: the submission knows its top layer and tag).
 */
export async function notifyCachedImage(
  env: Env,
  scope: NotifyScope,
  image: { id: string; topReference: string | null; tags: FinalImage["tags"] },
): Promise<void> {
  const subscriptions = (await listSubscriptions(env, scope.workspaceId)).filter((s) => s.events.includes("build.succeeded"));
  if (subscriptions.length === 0) return;
  const final: FinalImage = {
    id: image.id,
    buildId: null,
    status: "succeeded",
    failure: null,
    layers: [{ reference: image.topReference }],
    tags: image.tags,
  };
  await enqueueEvent(env, subscriptions, image.id, buildEvent(final, scope, Date.now())!);
}

/** Hands `event` to each subscription's delivery object (idempotent by event id). */
async function enqueueEvent(env: Env, subscriptions: Subscription[], imageId: string, event: BuildEvent): Promise<void> {
  const body = JSON.stringify(event);
  await Promise.all(
    subscriptions.map(async (s) => {
      const id = await eventId(s.id, imageId, event.type);
      await env.WEBHOOK_DELIVERY.getByName(s.id).enqueue({ subscriptionId: s.id, eventId: id, type: event.type, imageId, body });
    }),
  );
}
