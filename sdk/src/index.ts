/**
 * Kiln SDK: define container images with Modal's `Image` builder API and build them on Kiln.
 *
 * @example
 * import { Image } from "@kiln-build/sdk";
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
export { dockerfileContextPaths } from "@kiln-build/protocol/dockerfile";
export { parseGpu, GPU_TYPES, type GpuConfig } from "@kiln-build/protocol";
export {
  KilnError, InvalidError, NotFoundError, VersionError, ExecutionError, APIError, BadRequestError, AuthenticationError,
  PermissionDeniedError, NotFoundAPIError, ConflictError, PayloadTooLargeError, RateLimitError, InternalServerError,
  APIConnectionError, ImageBuildError,
} from "./errors.ts";
export { KilnClient, type KilnClientParams } from "./client.ts";
export type { ImageBuildParams } from "./image-build.ts";
export { BUILDER_VERSIONS, DEFAULT_BUILDER_VERSION, DEFAULT_PYTHON_SERIES, type BuilderVersion } from "@kiln-build/protocol";
export { computeLayerKey, computeChainKeys, LayerSpecSchema, ImageSpecSchema, type LayerSpec, type ImageSpec } from "@kiln-build/protocol";
export { shellQuote, shellJoin } from "./shell-quote.ts";
