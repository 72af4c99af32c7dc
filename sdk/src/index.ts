/**
 * Kiln SDK: define container images with Modal's `Image` builder API and build them on Kiln.
 *
 * @example
 * import { Image } from "@kiln-build/sdk";
 * const image = Image.debianSlim("3.12").aptInstall("git").pipInstall("requests");
 * console.log((await image.describe()).layers.map((l) => l.dockerfileCommands));
 */

export {
  BUILDER_VERSIONS,
  type BuilderVersion,
  computeChainKeys,
  computeLayerKey,
  DEFAULT_BUILDER_VERSION,
  DEFAULT_PYTHON_SERIES,
  GPU_TYPES,
  type GpuConfig,
  type ImageSpec,
  ImageSpecSchema,
  type LayerSpec,
  LayerSpecSchema,
  PLATFORMS,
  type Platform,
  parseGpu,
} from "@kiln-build/protocol";
export { dockerfileContextPaths } from "@kiln-build/protocol/dockerfile";
export { KilnClient, type KilnClientParams } from "./client.ts";
export { parseDockerignore } from "./dockerignore.ts";
export {
  APIConnectionError,
  APIError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ExecutionError,
  ImageBuildError,
  ImagePushError,
  InternalServerError,
  InvalidError,
  KilnError,
  NotFoundAPIError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  RateLimitError,
  VersionError,
} from "./errors.ts";
export { Image } from "./image.ts";
export type { ImageBuildParams } from "./image-build.ts";
export type { ImageDescription, LayerDescription } from "./image-describe.ts";
export type * from "./image-params.ts";
export type { ImagePushParams, PushTargetParam } from "./image-push.ts";
export type { PlatformImage } from "./image-state.ts";
export { Mount, type MountFromLocalDirParams, type MountFromLocalFileParams } from "./mount.ts";
export { FilePatternMatcher, type IgnoreSpec } from "./pattern-matcher.ts";
export { type RegistryLogin, registryLoginFor } from "./registry-reader.ts";
export { Secret, type SecretFromNameParams } from "./secret.ts";
export { shellJoin, shellQuote } from "./shell-quote.ts";
export { type ImageVerification, type ProvenanceSummary, VerificationError, type VerifyImageParams, verifyImage } from "./verify.ts";
export { Volume, type VolumeFromNameParams } from "./volume.ts";
