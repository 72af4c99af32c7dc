/**
 * Kiln SDK: define container images with Modal's `Image` builder API and build them on Kiln.
 *
 * @example
 * import { Image } from "kiln";
 * const image = Image.debianSlim("3.12").aptInstall("git").pipInstall("requests");
 * console.log((await image.describe()).layers.map((l) => l.dockerfileCommands));
 */
export { Image } from "./image.ts";
export type * from "./image-params.ts";
export type { ImageDescription, LayerDescription } from "./image-describe.ts";
export { Secret, type SecretFromNameParams } from "./secret.ts";
export { Mount, type MountFromLocalDirParams, type MountFromLocalFileParams } from "./mount.ts";
export { FilePatternMatcher, type IgnoreSpec } from "./pattern-matcher.ts";
export { parseDockerignore } from "./dockerignore.ts";
export { dockerfileContextPaths } from "./dockerfile/context-paths.ts";
export { parseGpu, GPU_TYPES, type GpuConfig } from "./gpu.ts";
export {
  KilnError, InvalidError, NotFoundError, VersionError, ExecutionError, APIError, BadRequestError, AuthenticationError,
  PermissionDeniedError, NotFoundAPIError, ConflictError, PayloadTooLargeError, RateLimitError, InternalServerError,
  APIConnectionError, ImageBuildError,
} from "./errors.ts";
export { KilnClient, type KilnClientParams } from "./client.ts";
export type { ImageBuildParams } from "./image-build.ts";
export { BUILDER_VERSIONS, DEFAULT_BUILDER_VERSION, DEFAULT_PYTHON_SERIES, type BuilderVersion } from "./builder-version.ts";
export { computeLayerKey, computeChainKeys, LayerSpecSchema, ImageSpecSchema, type LayerSpec, type ImageSpec } from "./layer-spec.ts";
export { shellQuote, shellJoin } from "./shell-quote.ts";
