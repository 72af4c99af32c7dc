/**
 * The wire format of a layer definition and the layer key, shared by the SDK and the
 * Worker. The Worker validates every submitted layer with `LayerSpecSchema` and recomputes
 * every key with `computeLayerKey`; it never trusts a key sent by a client. This module
 * must stay free of Node-only imports so workerd can load it unchanged.
 */
import canonicalize from "canonicalize";
import { z } from "zod";
import { BUILDER_VERSIONS, type BuilderVersion } from "./builder-version.ts";
import { Sha256Digest, sha256Hex } from "./digest.ts";
import { EnvName } from "./names.ts";

/** Bumped whenever the key input's shape or meaning changes, so old and new keys never collide. */
export const LAYER_KEY_VERSION = 1;

/** A GPU request: upper-case type and count. */
export const GpuConfigSchema = z.object({ type: z.string().min(1).max(32), count: z.number().int().min(1).max(64) }).strict();

/** Whether a value is plain JSON (null, booleans, finite numbers, strings, arrays, plain objects). */
export function isJsonValue(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isJsonValue(v, depth + 1));
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value).every((v) => isJsonValue(v, depth + 1));
  }
  return false;
}

// Not z.json(): that schema is recursive, and OpenAPI generation would recurse forever.
const JsonValue = z.unknown().refine((v) => isJsonValue(v), "must be a JSON value");

/** A build step that runs a user function inside the image (`runFunction`). */
export const BuildFunctionSchema = z
  .object({
    language: z.enum(["javascript", "python"]),
    name: z.string().min(1).max(256),
    /** The function's source (JavaScript) or the whole module's source (Python). */
    source: z.string().max(2 * 1024 * 1024),
    /** JSON-encoded positional arguments, keyword arguments and declared globals. */
    args: z.array(JsonValue),
    kwargs: z.record(z.string(), JsonValue),
    globals: z.record(z.string(), JsonValue),
    /** Not part of the key: a longer timeout does not change what the step builds. */
    timeoutSeconds: z.number().int().min(1).max(86_400),
  })
  .strict();

/** One layer of an image, as the SDK submits it and the runner builds it. */
export const LayerSpecSchema = z
  .object({
    /** Exact Dockerfile lines; the first is `FROM base` or `FROM <reference>`. */
    dockerfileCommands: z
      .array(z.string().max(64 * 1024))
      .min(1)
      .max(10_000),
    /** The layer's build-context tarball, or null when it needs no local files. */
    context: z.object({ digest: Sha256Digest, sizeBytes: z.number().int().nonnegative() }).strict().nullable(),
    /** Names of the secrets whose values the layer's RUN steps see as environment variables. */
    secrets: z.array(z.string().min(1).max(512)).max(64),
    gpu: GpuConfigSchema.nullable(),
    buildArgs: z.record(EnvName, z.string().max(64 * 1024)),
    /** How the runner authenticates to pull the base image, for registry root layers. */
    registryAuth: z
      .object({ kind: z.enum(["static", "gcp", "aws"]), secret: z.string().min(1) })
      .strict()
      .nullable(),
    buildFunction: BuildFunctionSchema.nullable(),
    /** A python-build-standalone release the runner places at `/python` in the context. */
    pythonStandalone: z
      .object({ series: z.string(), release: z.string(), version: z.string(), libc: z.literal("gnu") })
      .strict()
      .nullable(),
    /** Rebuild even when cached. Not part of the key: forcing does not change the result. */
    forceBuild: z.boolean(),
  })
  .strict();

/** One layer of an image, as submitted. */
export type LayerSpec = z.infer<typeof LayerSpecSchema>;

/** A whole chain, base first, with the builder version that lowered it. */
export const ImageSpecSchema = z
  .object({
    builderVersion: z.enum(BUILDER_VERSIONS),
    layers: z.array(LayerSpecSchema).min(1).max(256),
  })
  .strict()
  .superRefine((image, ctx) => {
    // Only the root layer names a base; every later layer builds on its parent, as in Modal.
    image.layers.forEach((layer, i) => {
      if (i > 0 && layer.dockerfileCommands[0] !== "FROM base") {
        ctx.addIssue({
          code: "custom",
          path: ["layers", i, "dockerfileCommands", 0],
          message: 'a derived layer must start with "FROM base"',
        });
      }
    });
  });

/** A whole chain, base first. */
export type ImageSpec = z.infer<typeof ImageSpecSchema>;

/**
 * The exact object whose canonical JSON is hashed into a layer key: everything that changes
 * what the layer builds, and nothing else (no secret values, timestamps, runner identity,
 * `forceBuild`, or the registry secret's name, only its kind).
 */
export function layerKeyInput(spec: LayerSpec, builderVersion: BuilderVersion, parentKey: string | null) {
  const fn = spec.buildFunction;
  return {
    kiln: LAYER_KEY_VERSION,
    builderVersion,
    parentKey,
    dockerfileCommands: spec.dockerfileCommands,
    contextDigest: spec.context?.digest ?? null,
    secrets: spec.secrets,
    gpu: spec.gpu,
    buildArgs: spec.buildArgs,
    registryAuthKind: spec.registryAuth?.kind ?? null,
    buildFunction: fn && { language: fn.language, name: fn.name, source: fn.source, args: fn.args, kwargs: fn.kwargs, globals: fn.globals },
    pythonStandalone: spec.pythonStandalone,
  };
}

/** The layer key: hex sha256 of the RFC 8785 canonical JSON of `layerKeyInput`. */
export async function computeLayerKey(spec: LayerSpec, builderVersion: BuilderVersion, parentKey: string | null): Promise<string> {
  const json = canonicalize(layerKeyInput(spec, builderVersion, parentKey));
  if (json === undefined) throw new Error("layer key input is not serialisable");
  return sha256Hex(json);
}

/** Keys of every layer of a chain, base first; each key folds in its parent's. */
export async function computeChainKeys(image: ImageSpec): Promise<string[]> {
  const keys: string[] = [];
  for (const layer of image.layers) {
    keys.push(await computeLayerKey(layer, image.builderVersion, keys.at(-1) ?? null));
  }
  return keys;
}
