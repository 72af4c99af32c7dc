/**
 * `Image.describe()`: lowers each layer for a builder version, hashes its context and
 * computes its key. Everything here runs offline.
 */
import {
  type BuilderVersion,
  computeLayerKey,
  DEFAULT_PLATFORM,
  envFlag,
  type ImageSpec,
  type LayerSpec,
  type Platform,
  processEnv,
} from "@kiln-build/protocol";
import { resolveContext } from "./context.ts";
import type { ResolvedContext } from "./context-manifest.ts";
import type { ContextFileDigest } from "./context-tar.ts";
import type { LayerDef } from "./layer-def.ts";
import type { RuntimeMount } from "./local-files.ts";
import { addPythonCommands, pythonStandalone } from "./python-version.ts";
import { requiredSecretKeys, type Secret } from "./secret.ts";

/** One lowered layer: its wire spec plus what tooling wants to see. */
export type LayerDescription = LayerSpec & {
  /** Every regular file in the layer's context manifest. */
  contextFiles: ContextFileDigest[];
  /** The layer key (hex sha256), chained through the parent's key. */
  key: string;
};

/** What `describe()` returns. */
export type ImageDescription = {
  builderVersion: BuilderVersion;
  layers: LayerDescription[];
  /** Files attached at container start-up (`addLocal*` without `copy`), not built into layers. */
  runtimeMounts: RuntimeMount[];
  /** `KILN_IGNORE_CACHE` was set: build fresh without replacing cached results. */
  ignoreCache: boolean;
  /**
   * Keys each named secret must hold (`Secret.fromName(name, { requiredKeys })`), merged over
   * every layer and registry login; the server refuses the build when one lacks them.
   */
  requiredSecretKeys: Record<string, string[]>;
  /** The chain in the API's submission format. */
  spec: ImageSpec;
};

/** Lowers and hashes a chain of layer definitions (for `platform`, default linux/amd64). */
export async function describeImage(
  defs: readonly LayerDef[],
  runtimeMounts: readonly RuntimeMount[],
  builderVersion: BuilderVersion,
  platform?: Platform,
): Promise<ImageDescription> {
  return (await describeWithSources(defs, runtimeMounts, builderVersion, platform)).description;
}

/**
 * `describeImage`, plus each layer's resolved context (manifest and blob files), which `build()`
 * uploads. Every layer of a chain for another platform than the default carries it (and so has
 * its own key); the default platform is left out, so keys of single-platform images never change.
 */
export async function describeWithSources(
  defs: readonly LayerDef[],
  runtimeMounts: readonly RuntimeMount[],
  builderVersion: BuilderVersion,
  platform: Platform = DEFAULT_PLATFORM,
): Promise<{
  description: ImageDescription;
  contexts: (ResolvedContext | null)[];
  inlineSecrets: Map<string, Readonly<Record<string, string>>>;
}> {
  const env = processEnv();
  const forceAll = envFlag(env.KILN_FORCE_BUILD);
  const layers: LayerDescription[] = [];
  const contexts: (ResolvedContext | null)[] = [];
  const inlineSecrets = new Map<string, Readonly<Record<string, string>>>();
  const referenced: Secret[] = [];
  for (const def of defs) {
    // A registry login's secret is stored and checked like a step's (it may be inline too).
    for (const secret of def.registryAuth ? [...def.secrets, def.registryAuth.secret] : def.secrets) {
      referenced.push(secret);
      const values = secret.inlineValues();
      if (values) inlineSecrets.set(secret.ref, values);
    }
    const lowered = def.lower(builderVersion);
    const standalone = def.addPython === null ? null : pythonStandalone(def.addPython, builderVersion);
    const [from, ...rest] = lowered.commands;
    const commands = standalone ? [from!, ...addPythonCommands(standalone), ...rest] : lowered.commands;
    const context = await resolveContext(lowered.context);
    contexts.push(context);
    const spec: LayerSpec = {
      dockerfileCommands: commands,
      context: context && { digest: context.digest, sizeBytes: context.sizeBytes },
      secrets: def.secrets.map((s) => s.ref),
      gpu: def.gpu,
      buildArgs: { ...def.buildArgs },
      registryAuth: def.registryAuth && { kind: def.registryAuth.kind, secret: def.registryAuth.secret.ref },
      buildFunction: def.buildFunction?.() ?? null,
      pythonStandalone: standalone,
      forceBuild: def.forceBuild || forceAll,
      ...(def.dockerfileTarget === undefined ? {} : { dockerfileTarget: def.dockerfileTarget }),
      ...(platform === DEFAULT_PLATFORM ? {} : { platform }),
    };
    const key = await computeLayerKey(spec, builderVersion, layers.at(-1)?.key ?? null);
    layers.push({ ...spec, contextFiles: context?.files ?? [], key });
  }
  const spec: ImageSpec = {
    builderVersion,
    layers: layers.map(({ contextFiles: _files, key: _key, ...layer }) => layer),
  };
  const description = {
    builderVersion,
    layers,
    runtimeMounts: [...runtimeMounts],
    ignoreCache: envFlag(env.KILN_IGNORE_CACHE),
    requiredSecretKeys: requiredSecretKeys(referenced),
    spec,
  };
  return { description, contexts, inlineSecrets };
}
