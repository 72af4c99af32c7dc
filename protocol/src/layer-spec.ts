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
import { EnvList } from "./dockerfile/env-list.ts";
import { imageReferenceProblem } from "./dockerfile/image-ref.ts";
import type { ArgCommand, Stage } from "./dockerfile/instruction-types.ts";
import { parseStages } from "./dockerfile/instructions.ts";
import { parseDockerfile } from "./dockerfile/parser.ts";
import { ShellLex } from "./dockerfile/shell-expand.ts";
import { GPU_TYPES } from "./gpu.ts";
import { EnvName } from "./names.ts";
import { DEFAULT_PLATFORM, PlatformSchema } from "./platform.ts";

/** Bumped whenever the key input's shape or meaning changes, so old and new keys never collide. */
export const LAYER_KEY_VERSION = 1;

/** A GPU request: one of `GPU_TYPES` (upper-case, as `parseGpu` writes it) and a count. */
export const GpuConfigSchema = z
  .object({
    // A string, not an enum, in the inferred type: the SDK's `GpuConfig` (gpu.ts) is `{ type: string }`.
    type: z
      .string()
      .refine((type) => (GPU_TYPES as readonly string[]).includes(type), `unknown GPU type; use one of ${GPU_TYPES.join(", ")}`),
    count: z.number().int().min(1).max(64),
  })
  .strict();

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
    /** The layer's context manifest (digest and byte length, decision 0022), or null when it needs no local files. */
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
    /** The Dockerfile stage to build (`fromDockerfile({ target })`); absent: the last stage. */
    dockerfileTarget: z.string().min(1).max(128).optional(),
    /** The platform the layer is built for (`buildah --platform`); absent: `DEFAULT_PLATFORM`. Every layer of a chain has the same. */
    platform: PlatformSchema.optional(),
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
        return;
      }
      if (layerPlatform(layer) !== layerPlatform(image.layers[0]!)) {
        ctx.addIssue({
          code: "custom",
          path: ["layers", i, "platform"],
          message: "every layer of a chain must have the root layer's platform",
        });
        return;
      }
      const problem = baseImageProblem(layer, i === 0);
      if (problem) ctx.addIssue({ code: "custom", path: ["layers", i, "dockerfileCommands"], message: problem });
    });
  });

/** A whole chain, base first. */
export type ImageSpec = z.infer<typeof ImageSpecSchema>;

const REFERENCE_EXAMPLE = 'e.g. "FROM python:3.12-slim" or "FROM registry.example.com/team/app:1.0"';
// FROM may use the platform ARGs every build predefines; their values do not change whether a reference is valid.
const PLATFORM_ARGS: [string, string][] = ["BUILD", "TARGET"].flatMap((side): [string, string][] => [
  [`${side}PLATFORM`, "linux/amd64"],
  [`${side}OS`, "linux"],
  [`${side}ARCH`, "amd64"],
  [`${side}VARIANT`, ""],
]);

/**
 * Why a layer's FROM lines cannot be built, or null. A root layer's first instruction (after
 * parser directives, comments and global ARGs) must be `FROM <image>`, and not `FROM base`: the
 * first layer of a chain has no parent. Every FROM of a root layer, and every FROM after the
 * leading `FROM base` of a derived one, must name an earlier stage, `scratch`, or an image
 * reference in the `distribution/reference` grammar once its ARGs are expanded with their
 * defaults and the layer's build args (no empty, `.` or `..` path segments). Read with the
 * Dockerfile front-end the SDK and the runner use, so a refusal here is one the build would meet.
 */
export function baseImageProblem(layer: Pick<LayerSpec, "dockerfileCommands" | "buildArgs">, root: boolean): string | null {
  // A derived layer without another FROM has nothing to check, and needs no parse.
  if (!root && !layer.dockerfileCommands.slice(1).some((line) => /^\s*from\s/i.test(line))) return null;
  const noFrom = `a root layer must start with FROM <image> (only comments, parser directives and ARG lines may come before it), ${REFERENCE_EXAMPLE}`;
  if (root && !layer.dockerfileCommands.some((line) => /^\s*from(\s|$)/i.test(line))) return noFrom;
  let stages: Stage[];
  let metaArgs: ArgCommand[];
  let escapeToken: string;
  try {
    const ast = parseDockerfile(layer.dockerfileCommands.join("\n"));
    if (root && ast.instructions.find((inst) => inst.command !== "arg")?.command !== "from") return noFrom;
    ({ stages, metaArgs } = parseStages(ast));
    escapeToken = ast.escapeToken;
  } catch (error) {
    return `not a valid Dockerfile: ${(error as Error).message}`;
  }
  const lex = new ShellLex({ escapeToken });
  const args = new EnvList(PLATFORM_ARGS.map(([k, v]) => [k, layer.buildArgs[k] ?? v]));
  for (const cmd of metaArgs) {
    for (const { key, value } of cmd.args) {
      const resolved = Object.hasOwn(layer.buildArgs, key)
        ? layer.buildArgs[key]
        : value === undefined
          ? undefined
          : expand(lex, value, args);
      if (resolved !== undefined) args.set(key, resolved);
    }
  }
  const stageNames = new Set<string>();
  for (const [i, stage] of stages.entries()) {
    const base = expand(lex, stage.baseName, args);
    const shown = stage.baseName.length > 100 ? `${stage.baseName.slice(0, 100)}...` : stage.baseName;
    if (i === 0 && root && base === "base") {
      return `the root layer builds FROM base, but the first layer of a chain has no parent: name an image, ${REFERENCE_EXAMPLE}`;
    }
    const skip = (i === 0 && !root) || stageNames.has(base.toLowerCase()) || base.toLowerCase() === "scratch";
    const problem = skip ? undefined : base === "" ? "the image name is empty" : imageReferenceProblem(base);
    if (problem) return `FROM ${JSON.stringify(shown)} is not a valid image reference (${problem}): ${REFERENCE_EXAMPLE}`;
    if (stage.name) stageNames.add(stage.name);
  }
  return null;
}

// A word as BuildKit expands FROM's argument; as written when it does not lex (then refused as a reference).
function expand(lex: ShellLex, word: string, env: EnvList): string {
  try {
    return lex.processWord(word, env);
  } catch {
    return word;
  }
}

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
    // Only when set, so every key computed before targets existed stays the same.
    ...(spec.dockerfileTarget === undefined ? {} : { dockerfileTarget: spec.dockerfileTarget }),
    // Only when not the default: every key computed before platforms existed was built for the
    // default platform, and stays the same whether the default is written or left out.
    ...(layerPlatform(spec) === DEFAULT_PLATFORM ? {} : { platform: spec.platform }),
  };
}

/** The platform a layer is built for: its `platform`, or the default. */
export function layerPlatform(spec: Pick<LayerSpec, "platform">) {
  return spec.platform ?? DEFAULT_PLATFORM;
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
