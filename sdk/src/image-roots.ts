/**
 * The root layers of `Image`'s factories: debianSlim, micromamba, registry images (public,
 * GCP Artifact Registry, AWS ECR), scratch and local Dockerfiles. Arguments are checked at
 * call time against the default builder version, and again when lowering for the chosen one.
 */
import { readFileSync } from "node:fs";
import { DEFAULT_PYTHON_SERIES, resolveBuilderVersion } from "@kiln-build/protocol";
import { assertStringList } from "./args.ts";
import { dockerContextSources } from "./docker-context.ts";
import { InvalidError } from "./errors.ts";
import { assertRegistryHost, checkBuildArgs, requireRegistrySecret } from "./image-checks.ts";
import type * as P from "./image-params.ts";
import { type LayerDef, layerCommon, type RegistryAuthDef } from "./layer-def.ts";
import { requireDir, requireFile } from "./local-files.ts";
import { debianSlimLayer, micromambaLayer, registryLayer } from "./lowering/base-images.ts";
import { checkParams } from "./param-check.ts";
import { pythonStandalone, validatePythonVersion } from "./python-version.ts";
import { Secret } from "./secret.ts";

/** `Image.debianSlim`'s layer; a micro version (`3.12.4`) is allowed. */
export function debianSlimRoot(pythonVersion?: string | P.ImageDebianSlimParams, params: P.ImageDebianSlimParams = {}): LayerDef {
  checkParams("Image.debianSlim", typeof pythonVersion === "object" ? pythonVersion : params);
  const opts = typeof pythonVersion === "object" ? pythonVersion : { ...params, pythonVersion };
  const version = opts.pythonVersion ?? DEFAULT_PYTHON_SERIES;
  const rules = { allowMicro: true, allowFreeThreading: false, caller: "Image.debianSlim" };
  validatePythonVersion(version, resolveBuilderVersion(undefined), rules);
  return {
    ...layerCommon({ forceBuild: opts.forceBuild }),
    lower: (v) => debianSlimLayer(validatePythonVersion(version, v, rules), v),
  };
}

/** `Image.micromamba`'s layer; it takes a Python series (`3.12`), not a micro version, as Modal's. */
export function micromambaRoot(pythonVersion?: string | P.ImageMicromambaParams, params: P.ImageMicromambaParams = {}): LayerDef {
  checkParams("Image.micromamba", typeof pythonVersion === "object" ? pythonVersion : params);
  const opts = typeof pythonVersion === "object" ? pythonVersion : { ...params, pythonVersion };
  const version = opts.pythonVersion ?? DEFAULT_PYTHON_SERIES;
  const rules = { allowMicro: false, allowFreeThreading: false, caller: "Image.micromamba" };
  validatePythonVersion(version, resolveBuilderVersion(undefined), rules);
  return {
    ...layerCommon({ forceBuild: opts.forceBuild }),
    lower: (v) => micromambaLayer(validatePythonVersion(version, v, rules), v),
  };
}

/** A registry image's layer: `FROM <tag>` and the setup commands, pulled with `auth`. */
export function registryRoot(method: string, tag: string, params: P.ImageFromRegistryParams, auth: RegistryAuthDef | null): LayerDef {
  if (typeof tag !== "string" || tag.trim() === "" || /\s/.test(tag)) {
    throw new InvalidError(`Image.${method}: ${JSON.stringify(tag)} is not an image reference. Use e.g. "python:3.12-slim-bookworm".`);
  }
  const setup = params.setupDockerfileCommands ?? [];
  assertStringList(setup, "setupDockerfileCommands must be a list of strings.");
  if (params.addPython !== undefined) pythonStandalone(params.addPython, resolveBuilderVersion(undefined));
  return {
    ...layerCommon({ forceBuild: params.forceBuild }),
    registryAuth: auth,
    addPython: params.addPython ?? null,
    lower: () => registryLayer(tag, setup),
  };
}

// The cloud-registry factories take the secret positionally or in params, as Modal's do.
export function registryOptions(
  method: "Image.fromRegistry" | "Image.fromGcpArtifactRegistry" | "Image.fromAwsEcr",
  secret: Secret | P.ImageFromRegistryParams | undefined,
  params: P.ImageFromRegistryParams,
): P.ImageFromRegistryParams {
  for (const options of [secret, params]) {
    if (options && !(options instanceof Secret) && "secrets" in options) {
      throw new InvalidError(`${method} takes one registry \`secret\`, not \`secrets\`.`);
    }
  }
  checkParams(method, params);
  if (!(secret instanceof Secret) && secret !== undefined) checkParams(method, secret);
  return secret instanceof Secret || secret === undefined ? { ...params, secret: secret ?? params.secret } : secret;
}

/** `Image.fromGcpArtifactRegistry`'s layer: only GCP hosts, authenticated with a service account. */
export function gcpArtifactRegistryRoot(
  tag: string,
  secret: Secret | P.ImageFromRegistryParams | undefined,
  params: P.ImageFromRegistryParams,
) {
  const opts = registryOptions("Image.fromGcpArtifactRegistry", secret, params);
  assertRegistryHost(
    "fromGcpArtifactRegistry",
    tag,
    /^([a-z0-9-]+-docker\.pkg\.dev|([a-z]+\.)?gcr\.io)$/,
    "<region>-docker.pkg.dev or gcr.io",
  );
  return registryRoot("fromGcpArtifactRegistry", tag, opts, requireRegistrySecret("fromGcpArtifactRegistry", "gcp", opts));
}

/** `Image.fromAwsEcr`'s layer: only ECR hosts, authenticated with an access key. */
export function awsEcrRoot(tag: string, secret: Secret | P.ImageFromRegistryParams | undefined, params: P.ImageFromRegistryParams) {
  const opts = registryOptions("Image.fromAwsEcr", secret, params);
  assertRegistryHost(
    "fromAwsEcr",
    tag,
    /^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/,
    "<account>.dkr.ecr.<region>.amazonaws.com",
  );
  return registryRoot("fromAwsEcr", tag, opts, requireRegistrySecret("fromAwsEcr", "aws", opts));
}

/** `Image.fromScratch`'s layer. */
export function scratchRoot(params: P.ImageFromScratchParams): LayerDef {
  checkParams("Image.fromScratch", params);
  return { ...layerCommon({ forceBuild: params.forceBuild }), lower: () => ({ commands: ["FROM scratch"], context: [] }) };
}

/**
 * `Image.fromDockerfile`'s two layers, as in Modal: the Dockerfile itself, then a `FROM base`
 * layer that adds Python when `addPython` is set.
 */
export function dockerfileRoots(dockerfilePath: string, params: P.ImageFromDockerfileParams): [LayerDef, LayerDef] {
  checkParams("Image.fromDockerfile", params);
  const file = requireFile(dockerfilePath, "Dockerfile");
  const contextDir = params.contextDir === undefined ? process.cwd() : requireDir(params.contextDir);
  const buildArgs = checkBuildArgs(params.buildArgs);
  if (params.addPython !== undefined) pythonStandalone(params.addPython, resolveBuilderVersion(undefined));
  const dockerfile: LayerDef = {
    ...layerCommon(params),
    buildArgs,
    ...(params.target === undefined ? {} : { dockerfileTarget: params.target }),
    lower: () => {
      const text = readFileSync(file, "utf8");
      const context = dockerContextSources(text, {
        contextDir,
        dockerfilePath: file,
        ignore: params.ignore,
        buildArgs,
        target: params.target,
      });
      // Modal keeps the raw text, comments, continuations and trailing "" included.
      return { commands: text.split("\n"), context };
    },
  };
  const python: LayerDef = {
    ...layerCommon({ forceBuild: params.forceBuild }),
    addPython: params.addPython ?? null,
    lower: () => ({ commands: ["FROM base"], context: [] }),
  };
  return [dockerfile, python];
}
