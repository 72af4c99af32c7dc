/**
 * An image's status and per-layer results, derived (never stored) from its build's D1 row,
 * the build's own layer results and the workspace's layer cache. Pure; `store.ts` loads the
 * rows. Used by `GET /v1/images/:id`, the submission answer, and badges.
 */
import { FAILURE_LOG_TAIL_LINES, type ImageStatus, type LayerView } from "@kiln-build/protocol";

export type { ImageStatus, LayerView };

import type { BuildStatusColumn } from "../db/schema/builds.ts";

/** A built layer's result. */
export type LayerResultRow = { key: string; digest: string; reference: string; sizeBytes: number; buildId: string | null };

/** The image row's fields the view needs. */
export type ImageRowLike = {
  id: string;
  layerKeys: string[];
  buildId: string | null;
  mode: "normal" | "force" | "ignore";
  freshFrom: number;
  createdAt: Date;
};
/**
 * The build row's fields the view needs. The `failure*` details beyond reason and message are
 * what the runner's `failed` event reported (D1 columns since migration 0001; null in older
 * rows and for failures without them); where set, they take precedence over what the view derives.
 */
export type BuildRowLike = {
  status: BuildStatusColumn;
  failureReason: string | null;
  failureMessage: string | null;
  failureExitCode?: number | null;
  failureLayerKey?: string | null;
  failureLogTail?: string[] | null;
};

/** Why an image failed: the layer, the step's exit code and the last lines of its output, where known. */
export type ImageFailure = {
  reason: string;
  message: string;
  /** The failing step's exit code (build failures only). */
  exitCode: number | null;
  /** The layer that failed, and its position in the image's chain (from 0). */
  layerKey: string | null;
  layerIndex: number | null;
  /** The last lines of output, oldest first, at most `FAILURE_LOG_TAIL_LINES`. */
  logTail: string[];
};

/** An image as the API shows it. */
export type ImageView = {
  id: string;
  status: ImageStatus;
  buildId: string | null;
  mode: ImageRowLike["mode"];
  failure: ImageFailure | null;
  layers: LayerView[];
  createdAt: string;
};

// The Build object appends the runner's exit code to the failure message in this form (durable-objects/runner-events.ts).
const EXIT_CODE_SUFFIX = / \(exit code (-?\d+)\)$/;

/** The user-facing status of a build status. */
export function imageStatusOfBuild(status: BuildStatusColumn | undefined): ImageStatus {
  switch (status) {
    case "running":
      return "building";
    case "succeeded":
    case "failed":
    case "cancelled":
    case "timeout":
      return status;
    default:
      return "queued";
  }
}

/**
 * Derives the view. A layer's result is the image's own build's (`own`) if it has one, else
 * the cache's (`cache`) for layers this image did not force or ignore; the image has
 * succeeded once its top layer has a result.
 */
export function imageView(
  image: ImageRowLike,
  build: BuildRowLike | null,
  own: ReadonlyMap<string, LayerResultRow>,
  cache: ReadonlyMap<string, LayerResultRow>,
): ImageView {
  const resolved = image.layerKeys.map((key, index) => {
    const mine = own.get(key);
    if (mine) return { result: mine, cached: false };
    const shared = index < image.freshFrom ? cache.get(key) : undefined;
    return shared ? { result: shared, cached: true } : null;
  });
  const topDone = resolved.at(-1) !== null;
  // The first layer without a result: where a build stops (it builds in chain order), or the cached layer that went missing.
  const firstMissing = resolved.indexOf(null);
  let status: ImageStatus;
  let failure: ImageView["failure"] = null;
  if (topDone) status = "succeeded";
  else if (image.buildId === null) {
    status = "failed";
    failure = {
      reason: "infra",
      message: "A cached layer of this image is no longer in the cache. Submit the image again.",
      exitCode: null,
      layerKey: image.layerKeys[firstMissing] ?? null,
      layerIndex: firstMissing >= 0 ? firstMissing : null,
      logTail: [],
    };
  } else {
    status = imageStatusOfBuild(build?.status);
    // A build can succeed for the part it was responsible for yet miss this image's top when it was forced elsewhere.
    if (status === "succeeded") status = "queued";
    if (build?.failureReason && (status === "failed" || status === "cancelled" || status === "timeout")) {
      failure = failureOf(build, build.failureReason, image.layerKeys, firstMissing);
    }
  }
  const layers = image.layerKeys.map((key, index): LayerView => {
    const r = resolved[index];
    if (r)
      return {
        index,
        key,
        status: "succeeded",
        cached: r.cached,
        digest: r.result.digest,
        reference: r.result.reference,
        sizeBytes: r.result.sizeBytes,
        buildId: r.result.buildId,
      };
    return { index, key, status, cached: false, digest: null, reference: null, sizeBytes: null, buildId: image.buildId };
  });
  return { id: image.id, status, buildId: image.buildId, mode: image.mode, failure, layers, createdAt: image.createdAt.toISOString() };
}

/**
 * A failed build's details. Stored fields win; otherwise, for a build failure, the exit code is
 * read from the message's suffix and the layer is the image's first without a result, the
 * same layer the Build object marks failed when the runner names none.
 */
function failureOf(build: BuildRowLike, reason: string, layerKeys: readonly string[], firstMissing: number): ImageFailure {
  const message = build.failureMessage ?? "";
  const isBuild = reason === "build";
  const suffix = isBuild ? EXIT_CODE_SUFFIX.exec(message) : null;
  const exitCode = build.failureExitCode ?? (suffix ? Number(suffix[1]) : null);
  const layerKey = build.failureLayerKey ?? (isBuild && firstMissing >= 0 ? layerKeys[firstMissing]! : null);
  const index = layerKey === null ? -1 : layerKeys.indexOf(layerKey);
  return {
    reason,
    message,
    exitCode,
    layerKey,
    layerIndex: index >= 0 ? index : null,
    logTail: (build.failureLogTail ?? []).slice(-FAILURE_LOG_TAIL_LINES),
  };
}
