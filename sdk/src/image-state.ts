/**
 * The immutable state behind an `Image` and the transitions its builder methods make:
 * append a layer, append a validated builder call, attach local files at start-up. The
 * `forceBuild` propagation rules and the "`addLocal*` comes last" rule live here.
 */
import type { Platform, PushView } from "@kiln-build/protocol";
import { InvalidError } from "./errors.ts";
import type * as P from "./image-params.ts";
import { type LayerDef, layerCommon } from "./layer-def.ts";
import type { RuntimeMount } from "./local-files.ts";
import type { Lowering } from "./lowering/types.ts";

/** What an `Image` holds: its layers, the files attached at start-up, and its build result. */
export type ImageState = {
  layers: readonly LayerDef[];
  runtimeMounts: readonly RuntimeMount[];
  /** Propagated to later layers by most methods, as Modal's `self.force_build or force_build`. */
  forceBuild: boolean;
  imageId?: string | undefined;
  reference?: string | undefined;
  digest?: string | undefined;
  uploadedBytes?: number | undefined;
  /** Where `build({ push })` copied the image: each target's digest (decision 0019). */
  pushes?: readonly PushView[] | undefined;
  /** The platforms `build()` builds by default (`withPlatforms`); absent: the server's default platform only. */
  platforms?: readonly Platform[] | undefined;
  /** Each platform's built image, when the build made a multi-platform image (decision 0023). */
  platformImages?: readonly PlatformImage[] | undefined;
};

/** One platform of a built multi-platform image. */
export type PlatformImage = { platform: Platform; imageId: string; digest: string | null; reference: string | null };

/** A validated builder call: the layer params it was given and how its layer lowers. */
export type LayerStep = {
  params: P.LayerParams & { buildArgs?: Record<string, string> };
  lower: Lowering;
};

/** The state of an image made of one root layer. */
export function rootState(layer: LayerDef): ImageState {
  return { layers: [layer], runtimeMounts: [], forceBuild: layer.forceBuild };
}

/** Appends a layer; `forceBuild` says whether the layers after it are forced too. */
export function pushLayer(state: ImageState, layer: LayerDef, forceBuild: boolean): ImageState {
  if (state.runtimeMounts.length > 0) {
    throw new InvalidError(
      "An image tried to run a build step after using `image.addLocal*` to include local files at container start-up.\n\n" +
        "Put `addLocal*` calls last in the chain, so local edits do not rebuild the image; or, if later steps need the files, " +
        "pass `{ copy: true }` to copy them into a layer at build time.",
    );
  }
  return {
    layers: [...state.layers, layer],
    runtimeMounts: [],
    forceBuild: forceBuild || layer.forceBuild,
    ...(state.platforms ? { platforms: state.platforms } : {}),
  };
}

/** Appends a builder call's layer, which inherits `forceBuild` and passes it on (most methods do). */
export function extendState(state: ImageState, step: LayerStep): ImageState {
  const forceBuild = state.forceBuild || !!step.params.forceBuild;
  const layer = { ...layerCommon(step.params), buildArgs: step.params.buildArgs ?? {}, forceBuild, lower: step.lower };
  return pushLayer(state, layer, forceBuild);
}

/** Attaches files at container start-up; the layers, and so their keys, stay the same. */
export function withMounts(state: ImageState, mounts: readonly RuntimeMount[]): ImageState {
  return {
    layers: state.layers,
    forceBuild: state.forceBuild,
    runtimeMounts: [...state.runtimeMounts, ...mounts],
    ...(state.platforms ? { platforms: state.platforms } : {}),
  };
}
