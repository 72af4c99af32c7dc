/**
 * `POST /v1/images` (submit a chain, answered at once) and `GET /v1/images/:id`. The Worker
 * validates every layer with the SDK's schema and recomputes every key itself. A fully
 * cached chain is answered by one D1 statement and no Durable Object; anything else goes to
 * the LayerBuild object of the chain's top key, which joins or creates the build
 * (durable-objects/layer-build.ts).
 */

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { ImageSubmissionSchema, ImageViewSchema, ociTagOf } from "@kiln-build/protocol";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { layerBuildName } from "../../durable-objects/layer-build.ts";
import { timeoutMsFor } from "../../durable-objects/retry-policy.ts";
import { newId } from "../../durable-objects/storage.ts";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireScope, workspaceOf } from "../auth/middleware.ts";
import { authenticateCached } from "../auth/token-cache.ts";
import { d1QueryTiming, markHandlerStart } from "../db/query-counter.ts";
import type { StoredRuntimeMount } from "../db/schema/images.ts";
import { tags } from "../db/schema/tags.ts";
import { executionContextOf, invalidateTagCaches, type WaitUntil } from "../edge-cache.ts";
import { ApiError, badRequest, conflict, forbidden, notFound } from "../errors.ts";
import { imageTags, ociReference, ociRepositoryPublic, publishTag, workspaceNameById } from "../images/oci-tags.ts";
import { checkPushSecrets, insertPendingPushes, loadPushViews, pushPlan } from "../images/pushes.ts";
import { checkReferences } from "../images/references.ts";
import { rememberResolved, resolvedChain } from "../images/resolved-chains.ts";
import {
  cachedImageId,
  findIdempotencyKey,
  insertImage,
  insertImageWithBuildStatus,
  loadImageView,
  type NewImage,
  probeChain,
  releaseIdempotencyKey,
  repointIdempotencyKey,
  reserveIdempotencyKey,
} from "../images/store.ts";
import { type ImageRequest, ImageRequestSchema, parseSubmission } from "../images/submission.ts";
import { type ImageStatus, imageStatusOfBuild, type LayerResultRow } from "../images/view.ts";
import { currentRequestId } from "../log.ts";
import { notifyCachedImage, notifyImage } from "../webhooks/notify.ts";
import { bearerSecurity, errorResponses, jsonBodyLimit, registerBearerScheme } from "./common.ts";

/** The images sub-app, mounted at the root. */
export const imagesApp = new OpenAPIHono<AppEnv>();
registerBearerScheme(imagesApp);

// 256 layers of Dockerfile lines and build-function sources; far above real chains, far below Workers' limits.
const MAX_BODY_BYTES = 16 * 1024 * 1024;

const SubmissionSchema = ImageSubmissionSchema.openapi("ImageSubmission");
const ImageSchema = ImageViewSchema.openapi("Image");
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{1,255}$/, "1-255 visible ASCII characters");

const submitRoute = createRoute({
  method: "post",
  path: "/v1/images",
  operationId: "createImage",
  tags: ["images"],
  summary: "Submit an image (its whole layer chain)",
  description:
    "Answers at once. 200 when the image is final (every layer cached, or a failure memoised within the last minute), 202 while it builds. Concurrent identical submissions share one build. `Idempotency-Key` makes a retried request return the first one's image. The response's `Server-Timing` header counts the D1 statements the request ran.",
  security: bearerSecurity,
  request: {
    headers: z.object({ "idempotency-key": IdempotencyKey.optional() }),
    body: { required: true, content: { "application/json": { schema: ImageRequestSchema } } },
  },
  responses: {
    200: json(SubmissionSchema, "The image is final (cached or failed)."),
    202: json(SubmissionSchema, "The image is building (or waiting to)."),
    ...errorResponses(400, 401, 403, 404, 409, 413, 422, 503),
  },
});
// Documented from the zod schema, but parsed by the handler: identical bodies skip re-validation (images/submission.ts).
imagesApp.openAPIRegistry.registerPath(submitRoute);

imagesApp.post("/v1/images", d1QueryTiming, authenticateCached, requireScope("images:write"), jsonBodyLimit(MAX_BODY_BYTES), async (c) => {
  markHandlerStart(c.req.raw);
  const idempotencyKey = c.req.header("idempotency-key");
  if (idempotencyKey !== undefined && !IdempotencyKey.safeParse(idempotencyKey).success)
    throw badRequest("Idempotency-Key must be 1-255 visible ASCII characters.");
  const parsed = await parseSubmission(await c.req.text());
  const { body } = parsed;
  if (body.tag && !c.get("auth").scopes.includes("tags:write")) throw forbidden("Setting `tag` needs the `tags:write` scope.");
  const workspaceId = await workspaceOf(c);
  const image: NewImage = {
    id: newId("im"),
    workspaceId,
    layerKeys: parsed.keys,
    buildId: null,
    mode: parsed.mode,
    freshFrom: parsed.freshFrom,
    runtimeMounts: (body.runtimeMounts ?? []) as StoredRuntimeMount[],
    submittedByTokenId: c.get("auth").tokenId,
  };
  const origin = new URL(c.req.url).origin;
  // A chain this isolate has resolved as fully cached has no side effect to repeat (its image is
  // content-addressed), so it is answered before the Idempotency-Key costs a read and a write.
  const remembered = await answerRemembered(c.env, executionContextOf(c), image, body, origin);
  if (remembered) return c.json(await withSubmittedTag(c.env, remembered, image, body.tag, origin), 200);
  if (idempotencyKey) {
    const replay = await idempotentReplay(c.env.DB, workspaceId, idempotencyKey, parsed.requestHash);
    if (replay) return c.json(replay, final(replay.status) ? 200 : 202);
    if (!(await reserveIdempotencyKey(c.env.DB, workspaceId, idempotencyKey, parsed.requestHash, image.id))) {
      const again = await idempotentReplay(c.env.DB, workspaceId, idempotencyKey, parsed.requestHash);
      if (again) return c.json(again, final(again.status) ? 200 : 202);
      throw conflict("idempotency_in_progress", "A request with this Idempotency-Key is still being processed. Retry shortly.");
    }
  }
  try {
    const submission = await submit(c.env, executionContextOf(c), image, body, origin, idempotencyKey);
    return c.json(await withSubmittedTag(c.env, submission, image, body.tag, origin), final(submission.status) ? 200 : 202);
  } catch (error) {
    if (idempotencyKey) await releaseIdempotencyKey(c.env.DB, workspaceId, idempotencyKey, image.id).catch(() => undefined);
    throw error;
  }
});

imagesApp.openapi(
  createRoute({
    method: "get",
    path: "/v1/images/{id}",
    operationId: "getImage",
    tags: ["images"],
    summary: "Read an image: status, per-layer digests and registry references, runtime mounts",
    security: bearerSecurity,
    middleware: [authenticate, requireScope("images:read")] as const,
    request: {
      params: z.object({
        id: z
          .string()
          .max(64)
          .openapi({ param: { name: "id", in: "path" }, example: "im-abc" }),
      }),
    },
    responses: { 200: json(ImageSchema, "The image."), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const workspaceId = await workspaceOf(c);
    const view = await loadImageView(c.env.DB, workspaceId, id);
    if (!view) throw notFound(`Image '${id}'`);
    const [tagList, pushes] = await Promise.all([
      imageTags(c.env, new URL(c.req.url).origin, workspaceId, id),
      loadPushViews(c.env.DB, workspaceId, id),
    ]);
    return c.json({ ...view, tags: tagList, ...(pushes ? { pushes } : {}) }, 200);
  },
);

type Submission = z.infer<typeof SubmissionSchema>;

/** The answer for a chain this isolate already resolved as fully cached (resolved-chains.ts), or null. */
async function answerRemembered(
  env: Env,
  ctx: WaitUntil | undefined,
  image: NewImage,
  body: ImageRequest,
  origin: string,
): Promise<Submission | null> {
  if (image.freshFrom !== image.layerKeys.length || body.push) return null;
  const cachedId = await cachedImageId(image.workspaceId, image.layerKeys.at(-1)!, image.runtimeMounts);
  const chain = resolvedChain(image.workspaceId, cachedId);
  if (chain === null) return null;
  const answered = { ...image, id: cachedId };
  await writeTag(env, ctx, { origin, workspaceName: chain.name }, answered, body.tag);
  return cachedAnswer(answered, chain.layers);
}

/** `submission` with the tag the request set, and the OCI reference it is published as. */
async function withSubmittedTag(
  env: Env,
  submission: Submission,
  image: NewImage,
  tag: string | undefined,
  origin: string,
): Promise<Submission> {
  if (!tag) return submission;
  const workspaceName = ociTagOf(tag) ? await workspaceNameById(env, image.workspaceId) : "";
  return { ...submission, tags: [{ name: tag, reference: ociReference(origin, workspaceName, tag) }] };
}

// `idempotencyKey`: the request reserved `image.id` under it, so a build must be recorded under that id.
async function submit(
  env: Env,
  ctx: WaitUntil | undefined,
  image: NewImage,
  body: ImageRequest,
  origin: string,
  idempotencyKey: string | undefined,
): Promise<Submission> {
  const keys = image.layerKeys;
  // The hot path: a fully cached chain costs one read and no Durable Object (plus one write, the
  // first time), and nothing at all when this isolate has answered it before (`answerRemembered`).
  const cachedId = await cachedImageId(image.workspaceId, keys.at(-1)!, image.runtimeMounts);
  // A push needs a runner even for a cached image: never answered from the cache alone.
  const everyLayerMayBeCached = image.freshFrom === keys.length && !body.push;
  const { cached, known, workspaceName, webhooks } = await probeChain(env.DB, image.workspaceId, keys, cachedId);
  if (workspaceName === null) throw notFound("Workspace");
  let prefix = 0;
  while (prefix < image.freshFrom && cached.has(keys[prefix]!)) prefix++;
  if (body.push) return submitWithPush(env, ctx, image, body, { origin, workspaceName, prefix, cached });
  if (prefix === keys.length) {
    // Every cached resolve of a chain shares its content-addressed image; a reserved Idempotency-Key
    // is moved to it, so a retry answers the same image and later submissions can skip the key.
    const answered = { ...image, id: cachedId };
    if (!known) await insertImage(env.DB, answered);
    if (idempotencyKey) await repointIdempotencyKey(env.DB, image.workspaceId, idempotencyKey, image.id, cachedId);
    const results = keys.map((key) => cached.get(key)!);
    if (everyLayerMayBeCached) rememberResolved(image.workspaceId, cachedId, { name: workspaceName, layers: results });
    await writeTag(env, ctx, { origin, workspaceName }, answered, body.tag);
    // A new image, final at once: its subscribers hear `build.succeeded` (once per image; repeats answer the same image).
    if (!known && webhooks > 0) {
      const tags = body.tag ? [{ name: body.tag, reference: ociReference(origin, workspaceName, body.tag) }] : [];
      await notifyCachedImage(
        env,
        { workspaceId: image.workspaceId, workspaceName, origin },
        { id: answered.id, topReference: cached.get(keys.at(-1)!)!.reference, tags },
      );
    }
    return cachedAnswer(answered, results);
  }
  const todo = body.layers.slice(prefix);
  await checkReferences(env, image.workspaceId, todo, body.requiredSecretKeys ?? {});
  const parent = prefix > 0 ? cached.get(keys[prefix - 1]!)! : null;
  const result = await env.LAYER_BUILD.getByName(layerBuildName(image.workspaceId, keys.at(-1)!)).submit({
    mode: image.mode,
    freshFrom: image.freshFrom,
    chainLength: keys.length,
    spec: {
      workspaceId: image.workspaceId,
      workspaceName,
      origin,
      mode: image.mode,
      freshFrom: image.freshFrom,
      builderVersion: body.builderVersion,
      parentKey: parent?.key ?? null,
      parentReference: parent?.reference ?? null,
      layers: todo.map((spec, i) => ({ index: prefix + i, key: keys[prefix + i]!, spec })),
      timeoutMs: timeoutMsFor(body.timeoutSeconds),
      requestId: currentRequestId(),
    },
  });
  if (!result.ok) throw new ApiError(503, result.error.code, result.error.message);
  image.buildId = result.buildId;
  const buildStatus = await insertImageWithBuildStatus(env.DB, image);
  await writeTag(env, ctx, { origin, workspaceName }, image, body.tag);
  // The build's row may lag a memoised success by a moment; the object's answer is authoritative then.
  const rest: ImageStatus = result.outcome === "cached" ? "succeeded" : imageStatusOfBuild(buildStatus ?? undefined);
  // Final already (a memoised failure, a build that ended before this row existed): the build's own notice may have missed it.
  if (final(rest)) await notifyImage(env, image.id, { workspaceId: image.workspaceId, workspaceName, origin });
  return {
    id: image.id,
    status: rest,
    buildId: image.buildId,
    layers: keys.map((key, index) => ({ index, key, status: index < prefix ? "succeeded" : rest })),
  };
}

/**
 * A submission with `push` gets a build of its own (decision 0019), created here rather than
 * through the top key's LayerBuild: pushes are per submission, so it joins no other build. It
 * claims its layers like any build (waiting for another build of the same key, using cached
 * ones) and dispatches one job that builds what is left and pushes, or only pushes.
 */
async function submitWithPush(
  env: Env,
  ctx: WaitUntil | undefined,
  image: NewImage,
  body: ImageRequest,
  chain: { origin: string; workspaceName: string; prefix: number; cached: Map<string, { key: string; reference: string }> },
): Promise<Submission> {
  const keys = image.layerKeys;
  const { origin, workspaceName, cached } = chain;
  // A fully cached chain gives its build the top layer only, found cached when claimed.
  const from = Math.min(chain.prefix, keys.length - 1);
  const todo = body.layers.slice(from);
  if (chain.prefix < keys.length) await checkReferences(env, image.workspaceId, todo, body.requiredSecretKeys ?? {});
  const buildId = newId("bd");
  const plan = pushPlan(body, image.id, buildId, new Date());
  await checkPushSecrets(env, image.workspaceId, plan);
  await insertPendingPushes(env.DB, image.workspaceId, buildId, plan);
  const parent = from > 0 ? cached.get(keys[from - 1]!)! : null;
  await env.BUILD.getByName(buildId).create({
    buildId,
    workspaceId: image.workspaceId,
    workspaceName,
    origin,
    mode: image.mode,
    freshFrom: image.freshFrom,
    builderVersion: body.builderVersion,
    parentKey: parent?.key ?? null,
    parentReference: parent?.reference ?? null,
    layers: todo.map((spec, i) => ({ index: from + i, key: keys[from + i]!, spec })),
    timeoutMs: timeoutMsFor(body.timeoutSeconds),
    requestId: currentRequestId(),
    push: plan,
  });
  image.buildId = buildId;
  const buildStatus = await insertImageWithBuildStatus(env.DB, image);
  await writeTag(env, ctx, { origin, workspaceName }, image, body.tag);
  const rest = imageStatusOfBuild(buildStatus ?? undefined);
  return {
    id: image.id,
    // Until its targets are pushed the submission is not final, even when every layer was cached.
    status: rest === "succeeded" ? "building" : rest,
    buildId,
    layers: keys.map((key, index) => ({ index, key, status: index < chain.prefix ? "succeeded" : rest })),
  };
}

async function writeTag(
  env: Env,
  ctx: WaitUntil | undefined,
  where: { origin: string; workspaceName: string },
  image: NewImage,
  tag: string | undefined,
): Promise<void> {
  if (!tag) return;
  // A new tag takes its registry repository's visibility, as with `PUT /v1/tags/{name}`.
  const isPublic = await ociRepositoryPublic(env, where.workspaceName, tag);
  await drizzle(env.DB)
    .insert(tags)
    .values({ workspaceId: image.workspaceId, name: tag, imageId: image.id, public: isPublic })
    .onConflictDoUpdate({
      target: [tags.workspaceId, tags.name],
      set: { imageId: image.id, updatedAt: sql`(unixepoch('subsec') * 1000)` },
    });
  // `NAME:TAG` is also an OCI tag, once the image has succeeded (else its build publishes it).
  await publishTag(env, image.workspaceId, where.workspaceName, tag, image.id);
  // The tag's badges and status page may be cached at the edge showing the image it pointed at before.
  await invalidateTagCaches(env, ctx, { ...where, workspaceId: image.workspaceId, tags: [tag] });
}

async function idempotentReplay(db: D1Database, workspaceId: string, key: string, requestHash: string): Promise<Submission | null> {
  const found = await findIdempotencyKey(db, workspaceId, key);
  if (!found) return null;
  if (found.requestHash !== requestHash) {
    throw new ApiError(
      422,
      "idempotency_key_reused",
      "This Idempotency-Key was used with a different request body. Use a new key for a different request.",
    );
  }
  const view = await loadImageView(db, workspaceId, found.imageId);
  if (!view) return null;
  return {
    id: view.id,
    status: view.status,
    buildId: view.buildId,
    // A succeeded image is answered complete, like a cached submission (`cachedAnswer`); others with statuses, like a build's.
    layers: view.layers.map(({ index, key: k, status, cached, digest, reference, sizeBytes, buildId }) =>
      view.status === "succeeded" ? { index, key: k, status, cached, digest, reference, sizeBytes, buildId } : { index, key: k, status },
    ),
  };
}

// A cached image's answer is final and complete: every layer's registry result, so the SDK needs no second request.
function cachedAnswer(image: Pick<NewImage, "id" | "layerKeys">, results: readonly LayerResultRow[]): Submission {
  return {
    id: image.id,
    status: "succeeded",
    buildId: null,
    layers: results.map(({ key, digest, reference, sizeBytes, buildId }, index) => ({
      index,
      key,
      status: "succeeded" as const,
      cached: true,
      digest,
      reference,
      sizeBytes,
      buildId,
    })),
  };
}

function final(status: ImageStatus): boolean {
  return status !== "queued" && status !== "building";
}
