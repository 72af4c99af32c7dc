/**
 * The external push of a multi-platform image (decision 0023, "Tags and pushes"). The index's
 * targets are recorded `pending` at `POST /v1/image-indexes`, with the id of the build that will
 * push them; once every platform succeeded and the OCI index is assembled, one Build is created
 * under that id. It claims the first platform's top layer (cached, so nothing is built) and
 * dispatches a push-only job whose source is the index, pinned by digest: the runner copies
 * every platform's manifest (config relabelled, manifest annotated) and then the annotated
 * index to each target, and reports a `push_result` per target, which the build's outbox writes
 * to `image_pushes` under the index's id. Dispatch, fleet trust for push logins, retries and
 * fencing are the Build object's, exactly as for a single image's push-only job.
 */
import { DEFAULT_BUILDER_VERSION, type ImageIndexView, type LayerSpec } from "@kiln-build/protocol";
import { and, eq, isNull, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { builds } from "../workers/db/schema/builds.ts";
import { imageIndexes, type StoredIndexPush } from "../workers/db/schema/image-indexes.ts";
import { images } from "../workers/db/schema/images.ts";
import { imagePushes } from "../workers/db/schema/pushes.ts";
import { loadImageIndex } from "../workers/images/image-index.ts";
import { loadImageView } from "../workers/images/store.ts";
import { log } from "../workers/log.ts";
import { timeoutMsFor } from "./retry-policy.ts";

/** Where the index's push build runs from: the workspace's registry namespace and the Worker's origin. */
export type IndexPushContext = { workspaceId: string; workspaceName: string; origin: string; requestId: string | null };

/**
 * Creates the index's push build when it is due: the index is assembled, it has targets still
 * pending and their build does not exist yet. Idempotent (the Build's creation is, and its D1
 * row exists once created), so every read of the index may call it; a read that fails half-way
 * leaves the next one to try again.
 */
export async function startIndexPushIfDue(env: Env, where: IndexPushContext, view: ImageIndexView, push: StoredIndexPush | null) {
  if (!push || view.status !== "succeeded" || view.reference === null) return;
  if (!(await pushPending(env, where.workspaceId, view.id, push.buildId))) return;
  const first = view.platforms[0];
  const image = first ? await loadImageView(env.DB, where.workspaceId, first.imageId) : null;
  const top = image?.layers.at(-1);
  const topBuild = top?.buildId ?? image?.buildId ?? null;
  const recipe = top && topBuild ? await env.BUILD.getByName(topBuild).layerRecipe(top.key) : null;
  if (!image || !top || !recipe) {
    await failPending(env, view.id, "not pushed: the first platform's image and the build that made it are no longer available");
    return;
  }
  const chainLength = image.layers.length;
  await env.BUILD.getByName(push.buildId).create({
    buildId: push.buildId,
    workspaceId: where.workspaceId,
    workspaceName: where.workspaceName,
    origin: where.origin,
    mode: "normal",
    freshFrom: chainLength,
    // Not part of the claim (the key is given); the runner only records it.
    builderVersion: DEFAULT_BUILDER_VERSION,
    parentKey: recipe.parentKey,
    parentReference: image.layers.at(-2)?.reference ?? null,
    layers: [{ index: recipe.index, key: recipe.key, spec: JSON.parse(recipe.specJson) as LayerSpec }],
    timeoutMs: timeoutMsFor(undefined),
    requestId: where.requestId,
    push: { imageId: view.id, targets: push.targets, labels: push.labels, annotations: push.annotations, source: view.reference },
  });
  log("info", "image index push started", { workspaceId: where.workspaceId, indexId: view.id, buildId: push.buildId });
}

/**
 * Settles every multi-platform image of the workspace that build `buildId` completed a platform
 * of: reading the index assembles it once all its platforms succeeded (publishing its tags) and
 * starts its push when due. Called when a build ends, so an index is tagged and pushed without
 * waiting for a client to read it; reads stay idempotent, so a later read changes nothing.
 */
export async function settleIndexesOfBuild(env: Env, buildId: string, where: IndexPushContext): Promise<void> {
  const d = drizzle(env.DB);
  const unsettled = await d
    .select({ id: imageIndexes.id })
    .from(imageIndexes)
    .where(
      and(
        eq(imageIndexes.workspaceId, where.workspaceId),
        isNull(imageIndexes.digest),
        sql`EXISTS (SELECT 1 FROM json_each(${imageIndexes.entries}) AS entry JOIN ${images}
              ON ${images.id} = json_extract(entry.value, '$.imageId')
              WHERE ${images.buildId} = ${buildId} AND ${images.workspaceId} = ${where.workspaceId})`,
      ),
    )
    .all();
  for (const { id } of unsettled) {
    const found = await loadImageIndex(env, where.workspaceId, id, where.origin);
    if (found?.view.pushes?.some((p) => p.status === "pending")) await startIndexPushIfDue(env, where, found.view, found.push);
  }
}

// Targets still pending and their build not created yet.
async function pushPending(env: Env, workspaceId: string, indexId: string, buildId: string): Promise<boolean> {
  const d = drizzle(env.DB);
  const [pending, build] = await d.batch([
    d
      .select({ position: imagePushes.position })
      .from(imagePushes)
      .where(and(eq(imagePushes.imageId, indexId), eq(imagePushes.workspaceId, workspaceId), eq(imagePushes.status, "pending")))
      .limit(1),
    d.select({ id: builds.id }).from(builds).where(eq(builds.id, buildId)).limit(1),
  ]);
  return pending.length > 0 && build.length === 0;
}

async function failPending(env: Env, indexId: string, message: string): Promise<void> {
  await drizzle(env.DB)
    .update(imagePushes)
    .set({ status: "failed", message, updatedAt: new Date() })
    .where(and(eq(imagePushes.imageId, indexId), eq(imagePushes.status, "pending")))
    .run();
}
