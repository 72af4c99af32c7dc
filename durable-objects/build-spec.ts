/**
 * What a Build object is created with: the uncached suffix of one chain and everything needed
 * to dispatch it later. Built by the images route from a validated request; passed over RPC
 * between trusted code only (validated at the HTTP boundary, not again here).
 */
import type { LayerSpec } from "@kiln-build/protocol";
import type { BuildPush } from "./build-push.ts";
import type { BuildMode } from "./join-policy.ts";

/** One layer a build is responsible for. `index` is its position in the image chain (0 = root). */
export type BuildLayer = { index: number; key: string; spec: LayerSpec };

/** A build's immutable description. */
export type BuildSpec = {
  buildId: string;
  workspaceId: string;
  /** The registry namespace of target references. */
  workspaceName: string;
  /** The Worker's own origin (`https://kiln.example.com`): registry host, events and context URLs. */
  origin: string;
  mode: BuildMode;
  /** Chain index from which every layer is rebuilt regardless of the cache (chain length: none). */
  freshFrom: number;
  builderVersion: string;
  /** The cached layer below `layers[0]`, or nulls when `layers[0]` is the root. */
  parentKey: string | null;
  parentReference: string | null;
  /** Contiguous, in chain order, ending with the submission's top layer. */
  layers: BuildLayer[];
  /** Per attempt, from dispatch. */
  timeoutMs: number;
  /** The submitting request's `x-request-id`, carried by every dispatch of the build (null: none). */
  requestId?: string | null;
  /** Copy the image to external registries once it exists (decision 0019); only on a submission's own build. */
  push?: BuildPush | null;
};
