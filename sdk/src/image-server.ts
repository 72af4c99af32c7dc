/**
 * What `Image` asks of a Kiln server: load a built image by id or tag, build a chain, and
 * tell whether this process runs inside a given image. Everything else in `Image` is local.
 */
import { DEFAULT_PLATFORM, type ImageIndexView, resolveBuilderVersion } from "@kiln-build/protocol";
import { KilnClient } from "./client.ts";
import { ExecutionError, InvalidError, NotFoundError } from "./errors.ts";
import { type ImageBuildParams, type ImageView, runBuild } from "./image-build.ts";
import { describeImage, describeWithSources } from "./image-describe.ts";
import { buildPlatformsState, checkOffered, platformsOf } from "./image-platforms.ts";
import { type ImageState, rootState } from "./image-state.ts";
import { layerCommon } from "./layer-def.ts";
import { registryLayer } from "./lowering/base-images.ts";

/** The state of an image (or multi-platform image, `ix-...`) built earlier; throws `NotFoundError` when this workspace has no such image. */
export async function loadImageState(imageId: string, client?: KilnClient): Promise<ImageState> {
  if (typeof imageId === "string" && /^ix-[A-Za-z0-9_-]+$/.test(imageId)) return loadIndexState(imageId, client ?? new KilnClient());
  if (typeof imageId !== "string" || !/^im-[A-Za-z0-9_-]+$/.test(imageId)) {
    throw new InvalidError(
      `Invalid image id: ${JSON.stringify(imageId)}. Image ids look like "im-..." (or "ix-..." for a multi-platform image); copy one from \`kiln images ls\`.`,
    );
  }
  const response = await (client ?? new KilnClient()).request("GET", ["v1", "images", imageId], { accept: [404] });
  if (response.status === 404) throw new NotFoundError(`Could not find image with ID ${imageId} in this workspace.`);
  return builtState((await response.json()) as ImageView);
}

/**
 * A multi-platform image built earlier: later layers build FROM its OCI index (each platform's
 * build picks its entry) and, by default, for the same platforms.
 */
async function loadIndexState(indexId: string, client: KilnClient): Promise<ImageState> {
  const response = await client.request("GET", ["v1", "image-indexes", indexId], { accept: [404] });
  if (response.status === 404) throw new NotFoundError(`Could not find image with ID ${indexId} in this workspace.`);
  const index = (await response.json()) as ImageIndexView;
  const reference = index.reference;
  if (index.status !== "succeeded" || !reference || !index.digest) {
    throw new ExecutionError(
      `Multi-platform image ${index.id} is ${index.status}, not built; it has no registry reference yet.${index.message ? ` ${index.message}` : ""}`,
    );
  }
  const root = rootState({ ...layerCommon({}), lower: () => registryLayer(reference, []) });
  return {
    ...root,
    imageId: index.id,
    reference,
    digest: index.digest,
    platforms: index.platforms.map((p) => p.platform),
    platformImages: index.platforms.map(({ platform, imageId, digest, reference }) => ({ platform, imageId, digest, reference })),
  };
}

// Later layers build on the image's registry reference, so an unbuilt image cannot be extended.
function builtState(view: ImageView): ImageState {
  const top = view.layers.at(-1);
  if (view.status !== "succeeded" || !top?.reference) {
    throw new ExecutionError(
      `Image ${view.id} is ${view.status}, not built; it has no registry reference yet. Wait for its build or build it again.`,
    );
  }
  const reference = top.reference;
  const root = rootState({ ...layerCommon({}), lower: () => registryLayer(reference, []) });
  return { ...root, imageId: view.id, reference, digest: top.digest ?? undefined };
}

/** The id of the image `tag` points at. */
export async function resolveTag(tag: string, client: KilnClient): Promise<string> {
  const response = await client.request("GET", ["v1", "tags", tag], { accept: [404] });
  if (response.status === 404) throw new NotFoundError(`No image is tagged '${tag}'. Build one with image.build({ tag: "${tag}" }).`);
  const { imageId } = (await response.json()) as { imageId: string };
  return imageId;
}

/** Builds the chain on the server and returns the state of the built image. */
export async function buildState(state: ImageState, params: ImageBuildParams): Promise<ImageState> {
  const platforms = platformsOf(state, params);
  const client = params.client ?? new KilnClient();
  if (platforms.length > 1) return buildPlatformsState(client, state, platforms, params);
  const platform = platforms[0]!;
  // Before anything is uploaded: a platform no fleet builds would only fail later.
  if (platform !== DEFAULT_PLATFORM) await checkOffered(client, platforms);
  const { description, contexts, inlineSecrets } = await describeWithSources(
    state.layers,
    state.runtimeMounts,
    resolveBuilderVersion(undefined),
    platform,
  );
  // Inline secrets (Secret.fromDict, `env` params) are stored under their ref first, so the
  // server hands their values to runners exactly like named secrets'.
  for (const [name, values] of inlineSecrets) await client.request("PUT", ["v1", "secrets", name], { json: { values } });
  const { view, upload } = await runBuild(client, description, contexts, params);
  const top = view.layers.at(-1);
  return {
    ...state,
    imageId: view.id,
    reference: top?.reference ?? undefined,
    digest: top?.digest ?? undefined,
    uploadedBytes: upload.bytesUploaded,
    pushes: view.pushes,
  };
}

/** Whether this process runs inside the image: the runner sets `KILN_IMAGE_ID` or `KILN_IMAGE_KEY`. */
export async function runningInside(state: ImageState): Promise<boolean> {
  const { KILN_IMAGE_ID, KILN_IMAGE_KEY } = process.env;
  if (KILN_IMAGE_ID && KILN_IMAGE_ID === state.imageId) return true;
  if (!KILN_IMAGE_KEY) return false;
  const { layers } = await describeImage(state.layers, state.runtimeMounts, resolveBuilderVersion(undefined));
  return layers.at(-1)?.key === KILN_IMAGE_KEY;
}
