/**
 * `Image`: an immutable, lazy builder of container images with Modal's `modal.Image` API.
 *
 * Every builder method validates its arguments synchronously and returns a new `Image`
 * (a no-op call returns `this`). No Dockerfile line is produced until `describe()` (or a
 * build) lowers each layer for a builder version, because the lines depend on it.
 *
 * @example
 * const image = Image.debianSlim().aptInstall("git").pipInstall("torch");
 * const { layers } = await image.describe();
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_PYTHON_SERIES, resolveBuilderVersion } from "@kiln-build/protocol";
import { assertStringList, flattenStrings, splitParams } from "./args.ts";
import { KilnClient } from "./client.ts";
import { dockerContextSources } from "./docker-context.ts";
import { ExecutionError, InvalidError, NotFoundError } from "./errors.ts";
import { type ImageBuildParams, type ImageView, runBuild } from "./image-build.ts";
import {
  assertRegistryHost,
  checkBuildArgs,
  deprecated,
  isModuleNotFound,
  rejectOptionLike,
  requireRegistrySecret,
} from "./image-checks.ts";
import { describeImage, describeWithSources, type ImageDescription } from "./image-describe.ts";
import type * as P from "./image-params.ts";
import { type LayerDef, layerCommon, type RegistryAuthDef } from "./layer-def.ts";
import { archivePathOf, findPythonSource, type RuntimeMount, remoteTarget, requireDir, requireFile, resolveLocal } from "./local-files.ts";
import { debianSlimLayer, micromambaLayer, registryLayer } from "./lowering/base-images.ts";
import * as py from "./lowering/python-packages.ts";
import type { ContextSource, LoweredLayer } from "./lowering/types.ts";
import { Mount } from "./mount.ts";
import { FilePatternMatcher, type IgnoreSpec } from "./pattern-matcher.ts";
import { pythonStandalone, validatePythonVersion } from "./python-version.ts";
import { buildFunctionDef } from "./run-function.ts";
import { collectSecrets, Secret } from "./secret.ts";
import { shellQuote } from "./shell-quote.ts";

type ImageState = {
  layers: readonly LayerDef[];
  runtimeMounts: readonly RuntimeMount[];
  /** Propagated to later layers by most methods, as Modal's `self.force_build or force_build`. */
  forceBuild: boolean;
  imageId?: string | undefined;
  reference?: string | undefined;
  digest?: string | undefined;
  uploadedBytes?: number | undefined;
};

// Modal's default for addLocalPythonSource: keep only Python files.
const NON_PYTHON_FILES = new FilePatternMatcher("**/*.py").invert();

/** A container image definition: a chain of layers, base first. */
export class Image {
  readonly #state: ImageState;
  /** The first successful build of this definition: a second `build()` call returns it. */
  #built: Promise<Image> | undefined;

  private constructor(state: ImageState) {
    this.#state = state;
  }

  // ---- root images ------------------------------------------------------------------

  /** The official `python:<version>-slim-bookworm` image with build tools (default Python 3.12). */
  static debianSlim(pythonVersion?: string | P.ImageDebianSlimParams, params: P.ImageDebianSlimParams = {}): Image {
    const opts = typeof pythonVersion === "object" ? pythonVersion : { ...params, pythonVersion };
    const version = opts.pythonVersion ?? DEFAULT_PYTHON_SERIES;
    const rules = { allowMicro: true, allowFreeThreading: false, caller: "Image.debianSlim" };
    validatePythonVersion(version, resolveBuilderVersion(undefined), rules);
    return Image.#root({
      ...layerCommon({ forceBuild: opts.forceBuild }),
      lower: (v) => debianSlimLayer(validatePythonVersion(version, v, rules), v),
    });
  }

  /** A micromamba (conda) base image with Python from conda-forge. */
  static micromamba(pythonVersion?: string | P.ImageMicromambaParams, params: P.ImageMicromambaParams = {}): Image {
    const opts = typeof pythonVersion === "object" ? pythonVersion : { ...params, pythonVersion };
    const version = opts.pythonVersion ?? DEFAULT_PYTHON_SERIES;
    const rules = { allowMicro: false, allowFreeThreading: false, caller: "Image.micromamba" };
    validatePythonVersion(version, resolveBuilderVersion(undefined), rules);
    return Image.#root({
      ...layerCommon({ forceBuild: opts.forceBuild }),
      lower: (v) => micromambaLayer(validatePythonVersion(version, v, rules), v),
    });
  }

  /** An image from a public or private registry; `secret` holds `REGISTRY_USERNAME`/`REGISTRY_PASSWORD`. */
  static fromRegistry(tag: string, params: P.ImageFromRegistryParams = {}): Image {
    return Image.#registry("fromRegistry", tag, params, params.secret ? { kind: "static", secret: params.secret } : null);
  }

  /** A private image in Google Artifact Registry; the secret holds `SERVICE_ACCOUNT_JSON`. */
  static fromGcpArtifactRegistry(tag: string, secret?: Secret | P.ImageFromRegistryParams, params: P.ImageFromRegistryParams = {}): Image {
    const opts = secret instanceof Secret || secret === undefined ? { ...params, secret: secret ?? params.secret } : secret;
    assertRegistryHost(
      "fromGcpArtifactRegistry",
      tag,
      /^([a-z0-9-]+-docker\.pkg\.dev|([a-z]+\.)?gcr\.io)$/,
      "<region>-docker.pkg.dev or gcr.io",
    );
    return Image.#registry("fromGcpArtifactRegistry", tag, opts, requireRegistrySecret("fromGcpArtifactRegistry", "gcp", opts));
  }

  /** A private image in AWS ECR; the secret holds `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION`. */
  static fromAwsEcr(tag: string, secret?: Secret | P.ImageFromRegistryParams, params: P.ImageFromRegistryParams = {}): Image {
    const opts = secret instanceof Secret || secret === undefined ? { ...params, secret: secret ?? params.secret } : secret;
    assertRegistryHost(
      "fromAwsEcr",
      tag,
      /^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/,
      "<account>.dkr.ecr.<region>.amazonaws.com",
    );
    return Image.#registry("fromAwsEcr", tag, opts, requireRegistrySecret("fromAwsEcr", "aws", opts));
  }

  /** An empty image (`FROM scratch`). */
  static fromScratch(): Image {
    return Image.#root({ ...layerCommon({}), lower: () => ({ commands: ["FROM scratch"], context: [] }) });
  }

  /**
   * An image from a local Dockerfile, as two layers like Modal: the Dockerfile itself, then
   * a `FROM base` layer that adds Python when `addPython` is set.
   */
  static fromDockerfile(dockerfilePath: string, params: P.ImageFromDockerfileParams = {}): Image {
    const file = requireFile(dockerfilePath, "Dockerfile");
    const contextDir = params.contextDir === undefined ? process.cwd() : requireDir(params.contextDir);
    const buildArgs = checkBuildArgs(params.buildArgs);
    if (params.addPython !== undefined) pythonStandalone(params.addPython, resolveBuilderVersion(undefined));
    const dockerfile = Image.#root({
      ...layerCommon(params),
      buildArgs,
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
    });
    // Modal applies force_build only to the second layer; Kiln forces both (a forced
    // rebuild that reuses the cached Dockerfile layer is not what the caller asked for).
    return dockerfile.#push(
      {
        ...layerCommon({ forceBuild: params.forceBuild }),
        addPython: params.addPython ?? null,
        lower: () => ({ commands: ["FROM base"], context: [] }),
      },
      params.forceBuild ?? false,
    );
  }

  /**
   * An image built earlier, by id. It can be extended: later layers build on its registry
   * reference. Throws `NotFoundError` when this workspace has no such image.
   */
  static async fromId(imageId: string, params: { client?: KilnClient } = {}): Promise<Image> {
    if (typeof imageId !== "string" || !/^im-[A-Za-z0-9_-]+$/.test(imageId)) {
      throw new InvalidError(
        `Invalid image id: ${JSON.stringify(imageId)}. Image ids look like "im-..."; copy one from \`kiln images ls\`.`,
      );
    }
    const client = params.client ?? new KilnClient();
    const response = await client.request("GET", ["v1", "images", imageId], { accept: [404] });
    if (response.status === 404) throw new NotFoundError(`Could not find image with ID ${imageId} in this workspace.`);
    return Image.#fromView((await response.json()) as ImageView);
  }

  /** The image a tag points at (`image.build({ tag })` or `kiln tags set`). */
  static async fromName(tag: string, params: { client?: KilnClient } = {}): Promise<Image> {
    const client = params.client ?? new KilnClient();
    const response = await client.request("GET", ["v1", "tags", tag], { accept: [404] });
    if (response.status === 404) throw new NotFoundError(`No image is tagged '${tag}'. Build one with image.build({ tag: "${tag}" }).`);
    const { imageId } = (await response.json()) as { imageId: string };
    return Image.fromId(imageId, { client });
  }

  static #fromView(view: ImageView): Image {
    const top = view.layers.at(-1);
    if (view.status !== "succeeded" || !top?.reference) {
      throw new ExecutionError(
        `Image ${view.id} is ${view.status}, not built; it has no registry reference yet. Wait for its build or build it again.`,
      );
    }
    const reference = top.reference;
    const image = Image.#root({ ...layerCommon({}), lower: () => registryLayer(reference, []) });
    return new Image({ ...image.#state, imageId: view.id, reference, digest: top.digest ?? undefined });
  }

  // ---- package installation -----------------------------------------------------------

  /** Installs Python packages with pip; `pipInstall("a", "b")` or `pipInstall(["a"], { indexUrl })`. */
  pipInstall(...args: (string | string[] | P.ImagePipInstallParams)[]): Image {
    const { items, params } = splitParams<P.ImagePipInstallParams>(args);
    const packages = flattenStrings("pip_install", "packages", items);
    if (packages.length === 0) return this;
    rejectOptionLike("Image.pipInstall", packages);
    return this.#extend(params, (v) => py.pipInstallLayer(packages, params, v));
  }

  /** Installs packages from private GitHub/GitLab repositories using `GITHUB_TOKEN`/`GITLAB_TOKEN` secrets. */
  pipInstallPrivateRepos(...args: (string | P.ImagePipInstallPrivateReposParams)[]): Image {
    const { items, params } = splitParams<P.ImagePipInstallPrivateReposParams>(args);
    const repositories = flattenStrings("pip_install_private_repos", "repositories", items);
    if (!params.secrets?.length) {
      throw new InvalidError(
        "No secrets provided to function. Installing private packages requires tokens to be passed via Secret objects.",
      );
    }
    if (typeof params.gitUser !== "string" || params.gitUser === "") {
      throw new InvalidError("pipInstallPrivateRepos needs `gitUser`, the account the token belongs to.");
    }
    const invalid = repositories.filter((r) => !r.startsWith("github.com/") && !r.startsWith("gitlab.com/"));
    if (invalid.length) {
      throw new InvalidError(
        `${invalid.length} out of ${repositories.length} given repository refs are invalid. Invalid refs: [${invalid.map((r) => `'${r}'`).join(", ")}]. ` +
          "Refs must start with 'github.com/' or 'gitlab.com/'.",
      );
    }
    if (repositories.length === 0) return this;
    const names = collectSecrets(params.secrets, params.env).map(String).join(",");
    return this.#extend(params, (v) => py.privateReposLayer(repositories, params.gitUser!, names, params, v));
  }

  /** Installs the packages of a local `requirements.txt`, which is sent in the build context. */
  pipInstallFromRequirements(requirementsTxt: string, params: P.ImagePipInstallFromRequirementsParams = {}): Image {
    const file = requireFile(requirementsTxt, "requirements file");
    return this.#extend(params, (v) => py.requirementsLayer(file, params, v));
  }

  /** Installs the dependencies a local `pyproject.toml` declares (parsed locally, not uploaded). */
  pipInstallFromPyproject(pyprojectToml: string, params: P.ImagePipInstallFromPyprojectParams = {}): Image {
    const file = requireFile(pyprojectToml, "pyproject.toml");
    const optional = params.optionalDependencies ?? [];
    assertStringList(optional, "optionalDependencies must be a list of strings.");
    return this.#extend(params, (v) => py.pyprojectLayer(file, optional, params, v));
  }

  /** Installs a Poetry project's dependencies (not the project itself) from its lockfile. */
  poetryInstallFromFile(poetryPyprojectToml: string, params: P.ImagePoetryInstallFromFileParams = {}): Image {
    const pyproject = requireFile(poetryPyprojectToml, "pyproject.toml");
    let lockfile: string | null = null;
    if (!params.ignoreLockfile) {
      const inferred = params.poetryLockfile ?? path.join(path.dirname(pyproject), "poetry.lock");
      try {
        lockfile = requireFile(inferred, "poetry.lock");
      } catch {
        const where = params.poetryLockfile ? "at" : "at inferred location:";
        throw new NotFoundError(
          `poetry.lock not found ${where} ${inferred}. If a lockfile is not needed, \`ignoreLockfile: true\` can be used.`,
        );
      }
    }
    const groups = { withGroups: params.with ?? [], without: params.without ?? [], only: params.only ?? [] };
    for (const [name, list] of Object.entries(groups)) assertStringList(list, `${name} must be a list of strings.`);
    const poetryVersion = params.poetryVersion === undefined ? "latest" : params.poetryVersion;
    const options = { lockfile, ...groups, poetryVersion, oldInstaller: params.oldInstaller ?? false };
    return this.#extend(params, (v) => py.poetryLayer(pyproject, options, v));
  }

  /** Installs Python packages with uv (`uvPipInstall("a")` or `uvPipInstall(["a"], { requirements })`). */
  uvPipInstall(...args: (string | string[] | P.ImageUvPipInstallParams)[]): Image {
    const { items, params } = splitParams<P.ImageUvPipInstallParams>(args);
    const packages = flattenStrings("uv_pip_install", "packages", items);
    if (params.requirements !== undefined) assertStringList(params.requirements, "requirements must be None or a list of strings");
    const requirements = (params.requirements ?? []).map((r) => requireFile(r, "requirements file"));
    if (packages.length === 0 && requirements.length === 0) return this;
    rejectOptionLike("Image.uvPipInstall", packages);
    return this.#extend(params, () => py.uvPipInstallLayer(packages, { ...params, requirements }));
  }

  /** Installs a uv project's locked dependencies (`pyproject.toml` + `uv.lock`) into `/.uv/.venv`. */
  uvSync(uvProjectDir: string | P.ImageUvSyncParams = "./", params: P.ImageUvSyncParams = {}): Image {
    const [dir, opts] = typeof uvProjectDir === "object" ? ["./", uvProjectDir] : [uvProjectDir, params];
    for (const name of ["groups", "extras"] as const) {
      if (opts[name] !== undefined) assertStringList(opts[name], `${name} must be None or a list of strings`);
    }
    const resolved = resolveLocal(dir);
    const options = {
      groups: opts.groups ?? [],
      extras: opts.extras ?? [],
      frozen: opts.frozen ?? true,
      extraOptions: opts.extraOptions ?? "",
      uvVersion: opts.uvVersion,
    };
    return this.#extend(opts, () => py.uvSyncLayer(resolved, dir, options));
  }

  /** Installs Debian packages with apt (in the order given). */
  aptInstall(...args: (string | string[] | P.LayerParams)[]): Image {
    const { items, params } = splitParams<P.LayerParams>(args);
    const packages = flattenStrings("apt_install", "packages", items);
    if (packages.length === 0) return this;
    const line = `RUN apt-get install -y ${packages.map(shellQuote).join(" ")}`;
    return this.#extend(params, () => ({ commands: ["FROM base", "RUN apt-get update", line], context: [] }));
  }

  /** Installs conda packages with micromamba, optionally from a local spec file. */
  micromambaInstall(...args: (string | string[] | P.ImageMicromambaInstallParams)[]): Image {
    const { items, params } = splitParams<P.ImageMicromambaInstallParams>(args);
    const packages = flattenStrings("micromamba_install", "packages", items);
    const specFile = params.specFile === undefined ? undefined : requireFile(params.specFile, "spec file");
    if (packages.length === 0 && !specFile) return this;
    const channels = params.channels ?? [];
    assertStringList(channels, "channels must be a list of strings.");
    return this.#extend(params, () => {
      const base = specFile ? path.basename(specFile) : "";
      const commands = ["FROM base", ...(specFile ? [`COPY /${base} /${base}`] : [])];
      const specArgs = specFile ? `${packages.length ? " " : ""}-f /${base} -n base` : "";
      const channelArgs = channels.map((c) => ` -c ${c}`).join("");
      commands.push(`RUN micromamba install ${packages.map(shellQuote).join(" ")}${specArgs}${channelArgs} --yes`);
      const context: ContextSource[] = specFile ? [{ kind: "file", localPath: specFile, archivePath: base }] : [];
      return { commands, context };
    });
  }

  // ---- raw steps and image config -----------------------------------------------------

  /** Runs shell commands, one `RUN` line each, verbatim. */
  runCommands(...args: (string | string[] | P.ImageRunCommandsParams)[]): Image {
    const { items, params } = splitParams<P.ImageRunCommandsParams>(args);
    const commands = flattenStrings("run_commands", "commands", items);
    if (commands.length === 0) return this;
    return this.#extend(params, () => ({ commands: ["FROM base", ...commands.map((c) => `RUN ${c}`)], context: [] }));
  }

  /** Adds Dockerfile lines verbatim; local `COPY`/`ADD` sources are sent in the context. */
  dockerfileCommands(...args: (string | string[] | P.ImageDockerfileCommandsParams)[]): Image {
    const { items, params } = splitParams<P.ImageDockerfileCommandsParams>(args);
    const lines = flattenStrings("dockerfile_commands", "dockerfile_commands", items);
    if (lines.length === 0) return this;
    const contextDir = params.contextDir === undefined ? process.cwd() : requireDir(params.contextDir);
    const buildArgs = checkBuildArgs(params.buildArgs);
    const files: ContextSource[] = Object.entries(params.contextFiles ?? {}).map(([remote, local]) => ({
      kind: "file",
      localPath: requireFile(local, "context file"),
      archivePath: archivePathOf(remoteTarget("dockerfileCommands", remote)),
    }));
    return this.#extend({ ...params, buildArgs }, () => {
      const commands = ["FROM base", ...lines];
      const context = [...files, ...dockerContextSources(commands.join("\n"), { contextDir, ignore: params.ignore, buildArgs })];
      return { commands, context };
    });
  }

  /** Sets environment variables (`ENV k=v`, values shell-quoted as Modal does). */
  env(vars: Record<string, string>): Image {
    if (vars === null || typeof vars !== "object" || Array.isArray(vars))
      throw new InvalidError("Image.env expects an object of string values.");
    const invalid = Object.entries(vars)
      .filter(([, v]) => typeof v !== "string")
      .map(([k]) => `'${k}'`);
    if (invalid.length) throw new InvalidError(`Image ENV variables must be strings. Invalid keys: [${invalid.join(", ")}]`);
    const entries = Object.entries(vars);
    if (entries.length === 0) return this;
    // env/workdir do not pass forceBuild on, as in Modal.
    return this.#push(
      {
        ...layerCommon({}),
        lower: () => ({ commands: ["FROM base", ...entries.map(([k, v]) => `ENV ${k}=${shellQuote(v)}`)], context: [] }),
      },
      false,
    );
  }

  /** Sets the working directory for later build steps and containers. */
  workdir(dir: string): Image {
    if (typeof dir !== "string" || dir === "") throw new InvalidError("Image.workdir expects a non-empty path string.");
    return this.#push({ ...layerCommon({}), lower: () => ({ commands: ["FROM base", `WORKDIR ${shellQuote(dir)}`], context: [] }) }, false);
  }

  /** Sets the image's `ENTRYPOINT`. */
  entrypoint(entrypointCommands: string[]): Image {
    return this.#jsonArrayInstruction("ENTRYPOINT", entrypointCommands, "entrypointCommands must be a list of strings.");
  }

  /** Sets the image's default `SHELL` for later `RUN` lines. */
  shell(shellCommands: string[]): Image {
    return this.#jsonArrayInstruction("SHELL", shellCommands, "shellCommands must be a list of strings.");
  }

  /** Sets the image's default command (`CMD`). */
  cmd(cmd: string[]): Image {
    return this.#jsonArrayInstruction("CMD", cmd, "Image CMD must be a list of strings.");
  }

  // ---- local files ---------------------------------------------------------------------

  /** Adds a local file at an absolute `remotePath` (a trailing `/` keeps the file's name). */
  addLocalFile(localPath: string, remotePath: string, params: P.ImageAddLocalFileParams = {}): Image {
    const file = requireFile(localPath);
    const remote = remoteTarget("addLocalFile", remotePath, path.basename(file));
    if (!params.copy) return this.#mount({ kind: "file", localPath: file, remotePath: remote });
    return this.#copyLayer([{ kind: "file", localPath: file, archivePath: archivePathOf(remote) }]);
  }

  /** Adds a local directory's contents at an absolute `remotePath`, minus `ignore`d files. */
  addLocalDir(localPath: string, remotePath: string, params: P.ImageAddLocalDirParams = {}): Image {
    const dir = requireDir(localPath);
    const remote = remoteTarget("addLocalDir", remotePath);
    const ignore = params.ignore ?? [];
    if (!params.copy) return this.#mount({ kind: "dir", localPath: dir, remotePath: remote, ignore });
    return this.#copyLayer([{ kind: "dir", localPath: dir, archivePath: archivePathOf(remote), ignore }]);
  }

  /** Adds local Python modules or packages under `/root` (only `.py` files by default). */
  addLocalPythonSource(...args: (string | P.ImageAddLocalPythonSourceParams)[]): Image {
    const { items, params } = splitParams<P.ImageAddLocalPythonSourceParams>(args);
    const modules = flattenStrings("add_local_python_source", "modules", items);
    const ignore = params.ignore ?? NON_PYTHON_FILES;
    const sources = modules.map((m) => findPythonSource(m));
    if (sources.length === 0) return this;
    if (!params.copy) {
      return sources.reduce<Image>((image, s) => image.#mount({ ...s, ...(s.kind === "dir" ? { ignore } : {}) }), this);
    }
    return this.#copyLayer(
      sources.map(
        (s): ContextSource =>
          s.kind === "dir"
            ? { kind: "dir", localPath: s.localPath, archivePath: archivePathOf(s.remotePath), ignore }
            : { kind: "file", localPath: s.localPath, archivePath: archivePathOf(s.remotePath) },
      ),
    );
  }

  /** @deprecated Use `addLocalFile(localPath, remotePath, { copy: true })`. */
  copyLocalFile(localPath: string, remotePath = "./"): Image {
    deprecated("Image.copyLocalFile", "Image.addLocalFile(localPath, remotePath, { copy: true })");
    const file = requireFile(localPath);
    const base = path.basename(file);
    return this.#copyLayer([{ kind: "file", localPath: file, archivePath: base }], `COPY ${base} ${remotePath}`);
  }

  /** @deprecated Use `addLocalDir(localPath, remotePath, { copy: true })`. */
  copyLocalDir(localPath: string, remotePath = ".", params: P.ImageCopyLocalDirParams = {}): Image {
    deprecated("Image.copyLocalDir", "Image.addLocalDir(localPath, remotePath, { copy: true })");
    const dir = requireDir(localPath);
    const source: ContextSource = { kind: "dir", localPath: dir, archivePath: "", ignore: params.ignore ?? [] };
    return this.#copyLayer([source], `COPY . ${remotePath}`);
  }

  /** @deprecated Use `addLocalDir(..., { copy: true })` or `addLocalFile(..., { copy: true })`. */
  copyMount(mount: Mount, remotePath = "."): Image {
    deprecated("Image.copyMount", "Image.addLocalDir(localPath, remotePath, { copy: true })");
    if (!(mount instanceof Mount)) throw new InvalidError("copyMount expects a Mount (Mount.fromLocalDir / Mount.fromLocalFile).");
    return this.#copyLayer([...mount.sources], `COPY . ${remotePath}`);
  }

  // ---- functions, imports, identity ----------------------------------------------------

  /**
   * Runs a function inside the image as a build step and snapshots the result. JavaScript
   * functions run with `node`; Python functions (`{ file, name }`) with `python`.
   */
  runFunction(fn: ((...args: never[]) => unknown) | P.PythonFunctionRef, params: P.ImageRunFunctionParams = {}): Image {
    const buildFunction = buildFunctionDef(fn, params);
    const forceBuild = this.#state.forceBuild || !!params.forceBuild;
    return this.#push(
      { ...layerCommon(params), forceBuild, buildFunction, lower: () => ({ commands: ["FROM base"], context: [] }) },
      forceBuild,
    );
  }

  /**
   * Runs `fn`, which imports packages that only exist inside the image. Outside the image a
   * missing module is reported as a warning and swallowed; inside it (the runner sets
   * `KILN_IMAGE_ID`/`KILN_IMAGE_KEY`) the error is rethrown. Other errors always propagate.
   */
  async imports<T>(fn: () => T | Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (error) {
      if (!isModuleNotFound(error) || (await this.#runningInside())) throw error;
      process.emitWarning(`${(error as Error).message} (ignored outside the image; it is rethrown inside it)`, { code: "KILN_IMPORTS" });
      return undefined;
    }
  }

  /**
   * Builds the image on a Kiln server: uploads the contexts the server lacks, submits the
   * chain, streams the build log and returns the built image. A built image returns itself.
   */
  async build(params: ImageBuildParams = {}): Promise<Image> {
    if (this.#state.imageId) return this;
    this.#built ??= this.#build(params).catch((error) => {
      this.#built = undefined;
      throw error;
    });
    return this.#built;
  }

  async #build(params: ImageBuildParams): Promise<Image> {
    const client = params.client ?? new KilnClient();
    const { description, sources, inlineSecrets } = await describeWithSources(
      this.#state.layers,
      this.#state.runtimeMounts,
      resolveBuilderVersion(undefined),
    );
    // Inline secrets (Secret.fromDict, `env` params) are stored under their ref first, so the
    // server hands their values to runners exactly like named secrets'.
    for (const [name, values] of inlineSecrets) await client.request("PUT", ["v1", "secrets", name], { json: { values } });
    const { view, upload } = await runBuild(client, description, sources, params);
    const top = view.layers.at(-1);
    return new Image({
      ...this.#state,
      imageId: view.id,
      reference: top?.reference ?? undefined,
      digest: top?.digest ?? undefined,
      uploadedBytes: upload.bytesUploaded,
    });
  }

  /** Resolves an already-built image against the server; an unbuilt one explains how to build it. */
  async hydrate(params: { client?: KilnClient } = {}): Promise<Image> {
    if (!this.#state.imageId) {
      throw new ExecutionError(
        "This image has not been built yet, so there is nothing to resolve. Build it with `await image.build()` (or `kiln build FILE.ts`), or load a built one with Image.fromId(id) / Image.fromName(tag).",
      );
    }
    await Image.fromId(this.#state.imageId, params);
    return this;
  }

  /** The image id once built, otherwise undefined. */
  get imageId(): string | undefined {
    return this.#state.imageId;
  }

  /** The registry reference of the built image (its top layer), once built. */
  get reference(): string | undefined {
    return this.#state.reference;
  }

  /** The manifest digest of the built image, once built. */
  get digest(): string | undefined {
    return this.#state.digest;
  }

  /** Bytes of build context the `build()` that produced this image uploaded (0 when all were cached). */
  get uploadedBytes(): number | undefined {
    return this.#state.uploadedBytes;
  }

  /** Lowers every layer for a builder version and hashes contexts and keys. No network. */
  async describe(params: P.ImageDescribeParams = {}): Promise<ImageDescription> {
    return describeImage(this.#state.layers, this.#state.runtimeMounts, resolveBuilderVersion(params.builderVersion));
  }

  // ---- internals -----------------------------------------------------------------------

  static #root(layer: LayerDef): Image {
    return new Image({ layers: [layer], runtimeMounts: [], forceBuild: layer.forceBuild });
  }

  static #registry(method: string, tag: string, params: P.ImageFromRegistryParams, auth: RegistryAuthDef | null): Image {
    if (typeof tag !== "string" || tag.trim() === "" || /\s/.test(tag)) {
      throw new InvalidError(`Image.${method}: ${JSON.stringify(tag)} is not an image reference. Use e.g. "python:3.12-slim-bookworm".`);
    }
    const setup = params.setupDockerfileCommands ?? [];
    assertStringList(setup, "setupDockerfileCommands must be a list of strings.");
    if (params.addPython !== undefined) pythonStandalone(params.addPython, resolveBuilderVersion(undefined));
    return Image.#root({
      ...layerCommon({ forceBuild: params.forceBuild }),
      registryAuth: auth,
      addPython: params.addPython ?? null,
      lower: () => registryLayer(tag, setup),
    });
  }

  #jsonArrayInstruction(instruction: string, values: unknown, message: string): Image {
    assertStringList(values, message);
    // Modal joins raw strings, leaving inner quotes unescaped; JSON.stringify escapes them
    // and is otherwise identical for plain strings.
    const line = `${instruction} [${values.map((v) => JSON.stringify(v)).join(", ")}]`;
    return this.#extend({}, () => ({ commands: ["FROM base", line], context: [] }));
  }

  // Modal's copy layers take no force_build: they neither inherit nor pass it on.
  #copyLayer(context: ContextSource[], line = "COPY . /"): Image {
    return this.#push({ ...layerCommon({}), lower: () => ({ commands: ["FROM base", line], context }) }, false);
  }

  #mount(mount: RuntimeMount): Image {
    return new Image({
      layers: this.#state.layers,
      forceBuild: this.#state.forceBuild,
      runtimeMounts: [...this.#state.runtimeMounts, mount],
    });
  }

  #extend(
    params: P.LayerParams & { buildArgs?: Record<string, string> },
    lower: (v: Parameters<LayerDef["lower"]>[0]) => LoweredLayer,
  ): Image {
    const forceBuild = this.#state.forceBuild || !!params.forceBuild;
    return this.#push({ ...layerCommon(params), buildArgs: params.buildArgs ?? {}, forceBuild, lower }, forceBuild);
  }

  #push(layer: LayerDef, forceBuild: boolean): Image {
    if (this.#state.runtimeMounts.length > 0) {
      throw new InvalidError(
        "An image tried to run a build step after using `image.addLocal*` to include local files at container start-up.\n\n" +
          "Put `addLocal*` calls last in the chain, so local edits do not rebuild the image; or, if later steps need the files, " +
          "pass `{ copy: true }` to copy them into a layer at build time.",
      );
    }
    return new Image({ layers: [...this.#state.layers, layer], runtimeMounts: [], forceBuild: forceBuild || layer.forceBuild });
  }

  async #runningInside(): Promise<boolean> {
    const { KILN_IMAGE_ID, KILN_IMAGE_KEY } = process.env;
    if (KILN_IMAGE_ID && KILN_IMAGE_ID === this.#state.imageId) return true;
    if (!KILN_IMAGE_KEY) return false;
    const { layers } = await this.describe();
    return layers.at(-1)?.key === KILN_IMAGE_KEY;
  }
}

export type { IgnoreSpec };
