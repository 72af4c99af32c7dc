/**
 * Multi-platform builds (decision 0023): `image.build({ platforms })` checks the platforms
 * offline, asks the server which platforms its fleets build (before uploading anything), then
 * builds one chain per platform at once (each an ordinary submission whose layers carry the
 * platform, so each is cached and deduplicated on its own) and groups them in an image index,
 * whose OCI index the server writes to its registry. A `tag` points at the index and `push`
 * copies the whole index (decision 0023, "Tags and pushes").
 */
import {
  DEFAULT_PLATFORM,
  type ImageIndexView,
  isPlatform,
  PLATFORMS,
  type Platform,
  type PlatformsView,
  type PushView,
  platformUnavailableMessage,
  resolveBuilderVersion,
} from "@kiln-build/protocol";
import type { KilnClient } from "./client.ts";
import { ExecutionError, ImagePushError, InvalidError } from "./errors.ts";
import { runBuild, waitForBuild } from "./image-build.ts";
import { describeWithSources } from "./image-describe.ts";
import type { ImageBuildParams } from "./image-params.ts";
import { pushBody } from "./image-push.ts";
import type { ImageState } from "./image-state.ts";

/** The platforms to build, checked: known, no repeats, at least one. Throws `InvalidError` before any request. */
export function checkPlatforms(platforms: readonly unknown[], where: string): Platform[] {
  if (!Array.isArray(platforms) || platforms.length === 0)
    throw new InvalidError(`${where}: name at least one platform, e.g. "linux/amd64".`);
  const seen = new Set<string>();
  for (const p of platforms) {
    if (typeof p !== "string" || !isPlatform(p))
      throw new InvalidError(`${where}: unknown platform ${JSON.stringify(p)}; Kiln builds ${PLATFORMS.join(", ")}.`);
    if (seen.has(p)) throw new InvalidError(`${where}: platform ${p} is listed twice.`);
    seen.add(p);
  }
  return [...seen] as Platform[];
}

/** The platforms a build makes: the call's, else the image's default (`withPlatforms`), else the default platform. */
export function platformsOf(state: ImageState, params: ImageBuildParams): Platform[] {
  if (params.platforms !== undefined) return checkPlatforms(params.platforms, "image.build({ platforms })");
  return state.platforms ? [...state.platforms] : [DEFAULT_PLATFORM];
}

/** Throws `InvalidError` naming what the fleets offer when the server's fleets do not build every one of `platforms`. */
export async function checkOffered(client: KilnClient, platforms: readonly Platform[]): Promise<void> {
  const view = await client.json<PlatformsView>("GET", ["v1", "platforms"]);
  const offered = view.platforms.map((p) => p.platform);
  const missing = platforms.filter((p) => !offered.includes(p));
  if (missing.length > 0) throw new InvalidError(platformUnavailableMessage(missing, offered));
}

/**
 * Builds one chain per platform at once, groups them in an index and returns the built state.
 * `tag` points at the index; `push` copies the whole index once it is assembled (one push build
 * on the server), and a target that failed raises `ImagePushError`.
 */
export async function buildPlatformsState(
  client: KilnClient,
  state: ImageState,
  platforms: readonly Platform[],
  params: ImageBuildParams,
): Promise<ImageState> {
  // Checked before any request; the platforms' own submissions carry neither tag nor push.
  const indexOptions = { tag: params.tag, ...pushBody(params) };
  const platformParams = { ...params, tag: undefined, push: undefined, pushSecret: undefined, labels: undefined, annotations: undefined };
  const perPlatform = { ...platformParams, source: undefined, revision: undefined, client };
  await checkOffered(client, platforms);
  const builderVersion = resolveBuilderVersion(undefined);
  const described = await Promise.all(platforms.map((p) => describeWithSources(state.layers, state.runtimeMounts, builderVersion, p)));
  for (const { inlineSecrets } of described.slice(0, 1))
    for (const [name, values] of inlineSecrets) await client.request("PUT", ["v1", "secrets", name], { json: { values } });
  const results = await Promise.all(
    described.map(({ description, contexts }, i) => runBuild(client, description, contexts, perPlatform, platforms[i])),
  );
  const images = results.map((r, i) => ({ platform: platforms[i]!, imageId: r.view.id }));
  let index = await client.json<ImageIndexView>("POST", ["v1", "image-indexes"], { json: { images, ...indexOptions } });
  if (index.digest === null && index.status === "succeeded")
    index = await client.json<ImageIndexView>("GET", ["v1", "image-indexes", index.id]);
  if (index.digest === null) throw new ExecutionError(`Image index ${index.id} was not assembled: ${index.message ?? index.status}`);
  const pushes = await settledIndexPushes(client, index);
  return {
    ...state,
    imageId: index.id,
    reference: index.reference ?? undefined,
    digest: index.digest,
    uploadedBytes: results.reduce((n, r) => n + r.upload.bytesUploaded, 0),
    platformImages: index.platforms.map(({ platform, imageId, digest, reference }) => ({ platform, imageId, digest, reference })),
    ...(pushes ? { pushes } : {}),
  };
}

/** The index's push outcomes once its push build ended and none is pending; throws `ImagePushError` when a target failed. */
async function settledIndexPushes(client: KilnClient, assembled: ImageIndexView): Promise<PushView[] | undefined> {
  let index = assembled;
  if (!index.pushes) return undefined;
  if (index.pushBuildId && index.pushes.some((p) => p.status === "pending")) await waitForBuild(client, index.pushBuildId);
  // A target's result may reach the API a moment after its build's end.
  for (let delay = 250; index.pushes?.some((p) => p.status === "pending") && delay <= 8000; delay *= 2) {
    await new Promise((r) => setTimeout(r, delay));
    index = await client.json<ImageIndexView>("GET", ["v1", "image-indexes", index.id]);
  }
  const pushes = index.pushes ?? [];
  const failed = pushes.filter((p) => p.status !== "succeeded");
  if (failed.length > 0) throw new ImagePushError({ imageId: index.id, buildId: index.pushBuildId ?? null, pushes, failed });
  return pushes;
}
