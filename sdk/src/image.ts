/**
 * `Image`: an immutable, lazy builder of container images with Modal's `modal.Image` API.
 *
 * Every builder method validates its arguments synchronously and returns a new `Image`
 * (a no-op call returns `this`). No Dockerfile line is produced until `describe()` (or a
 * build) lowers each layer for a builder version, because the lines depend on it.
 *
 * The class is the public surface; each group of methods checks its arguments in a sibling
 * module: image-roots.ts (factories), image-python.ts (Python and conda packages),
 * image-commands.ts (raw steps and config), image-files.ts (local files), image-server.ts
 * (loading and building), and image-state.ts holds the transitions they all go through.
 *
 * @example
 * const image = Image.debianSlim().aptInstall("git").pipInstall("torch");
 * const { layers } = await image.describe();
 */
import { type DeletedImage, type PushView, resolveBuilderVersion } from "@kiln-build/protocol";
import { KilnClient } from "./client.ts";
import { ExecutionError } from "./errors.ts";
import type { ImageBuildParams } from "./image-build.ts";
import { isModuleNotFound } from "./image-checks.ts";
import * as commands from "./image-commands.ts";
import { describeImage, type ImageDescription } from "./image-describe.ts";
import * as files from "./image-files.ts";
import type * as P from "./image-params.ts";
import { checkPlatforms } from "./image-platforms.ts";
import * as python from "./image-python.ts";
import * as roots from "./image-roots.ts";
import { buildState, loadImageState, resolveTag, runningInside } from "./image-server.ts";
import { extendState, type ImageState, type LayerStep, type PlatformImage, pushLayer, rootState } from "./image-state.ts";
import { type LayerDef, layerCommon } from "./layer-def.ts";
import type { Mount } from "./mount.ts";
import { checkParams } from "./param-check.ts";
import type { IgnoreSpec } from "./pattern-matcher.ts";
import { buildFunctionDef } from "./run-function.ts";
import type { Secret } from "./secret.ts";

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
    return new Image(rootState(roots.debianSlimRoot(pythonVersion, params)));
  }

  /** A micromamba (conda) base image with Python from conda-forge. */
  static micromamba(pythonVersion?: string | P.ImageMicromambaParams, params: P.ImageMicromambaParams = {}): Image {
    return new Image(rootState(roots.micromambaRoot(pythonVersion, params)));
  }

  /** An image from a public or private registry; `secret` holds `REGISTRY_USERNAME`/`REGISTRY_PASSWORD`. */
  static fromRegistry(tag: string, secret?: Secret | P.ImageFromRegistryParams, params: P.ImageFromRegistryParams = {}): Image {
    const opts = roots.registryOptions("Image.fromRegistry", secret, params);
    const auth = opts.secret ? { kind: "static" as const, secret: opts.secret } : null;
    return new Image(rootState(roots.registryRoot("fromRegistry", tag, opts, auth)));
  }

  /** A private image in Google Artifact Registry; the secret holds `SERVICE_ACCOUNT_JSON`. */
  static fromGcpArtifactRegistry(tag: string, secret?: Secret | P.ImageFromRegistryParams, params: P.ImageFromRegistryParams = {}): Image {
    return new Image(rootState(roots.gcpArtifactRegistryRoot(tag, secret, params)));
  }

  /** A private image in AWS ECR; the secret holds `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION`. */
  static fromAwsEcr(tag: string, secret?: Secret | P.ImageFromRegistryParams, params: P.ImageFromRegistryParams = {}): Image {
    return new Image(rootState(roots.awsEcrRoot(tag, secret, params)));
  }

  /** An empty image (`FROM scratch`). */
  static fromScratch(params: P.ImageFromScratchParams = {}): Image {
    return new Image(rootState(roots.scratchRoot(params)));
  }

  /**
   * An image from a local Dockerfile, as two layers like Modal: the Dockerfile itself, then
   * a `FROM base` layer that adds Python when `addPython` is set.
   */
  static fromDockerfile(dockerfilePath: string, params: P.ImageFromDockerfileParams = {}): Image {
    const [dockerfile, python] = roots.dockerfileRoots(dockerfilePath, params);
    // Modal applies force_build only to the second layer; Kiln forces both (a forced
    // rebuild that reuses the cached Dockerfile layer is not what the caller asked for).
    return new Image(pushLayer(rootState(dockerfile), python, params.forceBuild ?? false));
  }

  /**
   * An image built earlier, by id (`im-...`, or `ix-...` for a multi-platform image, whose
   * later layers build on its OCI index for the same platforms). It can be extended: later
   * layers build on its registry reference. Throws `NotFoundError` when this workspace has no such image.
   */
  static async fromId(imageId: string, params: { client?: KilnClient } = {}): Promise<Image> {
    return new Image(await loadImageState(imageId, params.client));
  }

  /** The image a tag points at (`image.build({ tag })` or `kiln tags set`). */
  static async fromName(tag: string, params: { client?: KilnClient } = {}): Promise<Image> {
    const client = params.client ?? new KilnClient();
    return Image.fromId(await resolveTag(tag, client), { client });
  }

  // ---- package installation -----------------------------------------------------------

  /** Installs Python packages with pip; `pipInstall("a", "b")` or `pipInstall(["a"], { indexUrl })`. */
  pipInstall(...args: (string | string[] | P.ImagePipInstallParams)[]): Image {
    return this.#extend(python.pipInstallStep(args));
  }

  /** Installs packages from private GitHub/GitLab repositories using `GITHUB_TOKEN`/`GITLAB_TOKEN` secrets. */
  pipInstallPrivateRepos(...args: (string | P.ImagePipInstallPrivateReposParams)[]): Image {
    return this.#extend(python.privateReposStep(args));
  }

  /** Installs the packages of a local `requirements.txt`, which is sent in the build context. */
  pipInstallFromRequirements(requirementsTxt: string, params: P.ImagePipInstallFromRequirementsParams = {}): Image {
    checkParams("pipInstallFromRequirements", params);
    return this.#extend(python.requirementsStep(requirementsTxt, params));
  }

  /** Installs the dependencies a local `pyproject.toml` declares (parsed locally, not uploaded). */
  pipInstallFromPyproject(pyprojectToml: string, params: P.ImagePipInstallFromPyprojectParams = {}): Image {
    checkParams("pipInstallFromPyproject", params);
    return this.#extend(python.pyprojectStep(pyprojectToml, params));
  }

  /** Installs a Poetry project's dependencies (not the project itself) from its lockfile. */
  poetryInstallFromFile(poetryPyprojectToml: string, params: P.ImagePoetryInstallFromFileParams = {}): Image {
    checkParams("poetryInstallFromFile", params);
    return this.#extend(python.poetryStep(poetryPyprojectToml, params));
  }

  /** Installs Python packages with uv (`uvPipInstall("a")` or `uvPipInstall(["a"], { requirements })`). */
  uvPipInstall(...args: (string | string[] | P.ImageUvPipInstallParams)[]): Image {
    return this.#extend(python.uvPipInstallStep(args));
  }

  /** Installs a uv project's locked dependencies (`pyproject.toml` + `uv.lock`) into `/.uv/.venv`. */
  uvSync(uvProjectDir: string | P.ImageUvSyncParams = "./", params: P.ImageUvSyncParams = {}): Image {
    checkParams("uvSync", typeof uvProjectDir === "object" ? uvProjectDir : params);
    return this.#extend(python.uvSyncStep(uvProjectDir, params));
  }

  /** Installs Debian packages with apt (in the order given). */
  aptInstall(...args: (string | string[] | P.LayerParams)[]): Image {
    return this.#extend(commands.aptInstallStep(args));
  }

  /** Installs conda packages with micromamba, optionally from a local spec file. */
  micromambaInstall(...args: (string | string[] | P.ImageMicromambaInstallParams)[]): Image {
    return this.#extend(python.micromambaInstallStep(args));
  }

  // ---- raw steps and image config -----------------------------------------------------

  /** Runs shell commands, one `RUN` line each, verbatim. */
  runCommands(...args: (string | string[] | P.ImageRunCommandsParams)[]): Image {
    return this.#extend(commands.runCommandsStep(args));
  }

  /** Adds Dockerfile lines verbatim; local `COPY`/`ADD` sources are sent in the context. */
  dockerfileCommands(...args: (string | string[] | P.ImageDockerfileCommandsParams)[]): Image {
    return this.#extend(commands.dockerfileCommandsStep(args));
  }

  /** Sets environment variables (`ENV k=v`, values shell-quoted as Modal does). */
  env(vars: Record<string, string>): Image {
    // env/workdir do not pass forceBuild on, as in Modal.
    return this.#push(commands.envLayer(vars), false);
  }

  /** Sets the working directory for later build steps and containers. */
  workdir(dir: string): Image {
    return this.#push(commands.workdirLayer(dir), false);
  }

  /** Sets the image's `ENTRYPOINT`. */
  entrypoint(entrypointCommands: string[]): Image {
    return this.#extend(commands.jsonArrayStep("ENTRYPOINT", entrypointCommands, "entrypointCommands must be a list of strings."));
  }

  /** Sets the image's default `SHELL` for later `RUN` lines. */
  shell(shellCommands: string[]): Image {
    return this.#extend(commands.jsonArrayStep("SHELL", shellCommands, "shellCommands must be a list of strings."));
  }

  /** Sets the image's default command (`CMD`). */
  cmd(cmd: string[]): Image {
    return this.#extend(commands.jsonArrayStep("CMD", cmd, "Image CMD must be a list of strings."));
  }

  // ---- local files ---------------------------------------------------------------------

  /** Adds a local file at an absolute `remotePath` (a trailing `/` keeps the file's name). */
  addLocalFile(localPath: string, remotePath: string, params: P.ImageAddLocalFileParams = {}): Image {
    checkParams("addLocalFile", params);
    return this.#addFiles(files.localFileStep(localPath, remotePath, params));
  }

  /** Adds a local directory's contents at an absolute `remotePath`, minus `ignore`d files. */
  addLocalDir(localPath: string, remotePath: string, params: P.ImageAddLocalDirParams = {}): Image {
    checkParams("addLocalDir", params);
    return this.#addFiles(files.localDirStep(localPath, remotePath, params));
  }

  /** Adds local Python modules or packages under `/root` (only `.py` files by default). */
  addLocalPythonSource(...args: (string | P.ImageAddLocalPythonSourceParams)[]): Image {
    return this.#addFiles(files.pythonSourceStep(args));
  }

  /** @deprecated Use `addLocalFile(localPath, remotePath, { copy: true })`. */
  copyLocalFile(localPath: string, remotePath = "./"): Image {
    return this.#addFiles(files.copyLocalFileStep(localPath, remotePath));
  }

  /** @deprecated Use `addLocalDir(localPath, remotePath, { copy: true })`. */
  copyLocalDir(localPath: string, remotePath = ".", params: P.ImageCopyLocalDirParams = {}): Image {
    checkParams("copyLocalDir", params);
    return this.#addFiles(files.copyLocalDirStep(localPath, remotePath, params));
  }

  /** @deprecated Use `addLocalDir(..., { copy: true })` or `addLocalFile(..., { copy: true })`. */
  copyMount(mount: Mount, remotePath = "."): Image {
    return this.#addFiles(files.copyMountStep(mount, remotePath));
  }

  // ---- functions, imports, identity ----------------------------------------------------

  /**
   * Runs a function inside the image as a build step and snapshots the result. JavaScript
   * functions run with `node`; Python functions (`{ file, name }`) with `python`.
   */
  runFunction(fn: ((...args: never[]) => unknown) | P.PythonFunctionRef, params: P.ImageRunFunctionParams = {}): Image {
    checkParams("runFunction", params);
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
      if (!isModuleNotFound(error) || (await runningInside(this.#state))) throw error;
      process.emitWarning(`${(error as Error).message} (ignored outside the image; it is rethrown inside it)`, { code: "KILN_IMPORTS" });
      return undefined;
    }
  }

  /**
   * Builds the image on a Kiln server: uploads the contexts the server lacks, submits the
   * chain, streams the build log and returns the built image. A built image returns itself.
   */
  async build(params: ImageBuildParams = {}): Promise<Image> {
    checkParams("build", params);
    if (this.#state.imageId) return this;
    this.#built ??= this.#build(params).catch((error) => {
      this.#built = undefined;
      throw error;
    });
    return this.#built;
  }

  async #build(params: ImageBuildParams): Promise<Image> {
    return new Image(await buildState(this.#state, params));
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

  /**
   * Deletes this built image and the tags pointing at it on the server
   * (`DELETE /v1/images/{id}`). Layers other images use stay; the registry GC reclaims the
   * rest after its grace period. An image with no id (never built) is an `ExecutionError`
   * before any request; one still building is a `ConflictError` (cancel its build first).
   *
   * @example
   * const image = await Image.fromName("app:v1");
   * await image.delete(); // { id, deleted: true, tags: ["app:v1"] }
   */
  async delete(params: P.ImageDeleteParams = {}): Promise<DeletedImage> {
    checkParams("delete", params);
    const imageId = this.#state.imageId;
    if (!imageId) {
      throw new ExecutionError(
        "This image has not been built, so there is nothing to delete on the server. Load a built one with Image.fromId(id) or Image.fromName(tag), or delete by id with `kiln images rm ID`.",
      );
    }
    return (params.client ?? new KilnClient()).deleteImage(imageId);
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

  /** Each push target of the `build({ push })` that produced this image, with the digest it got there. */
  get pushes(): readonly PushView[] | undefined {
    return this.#state.pushes;
  }

  /**
   * The platforms `build()` makes when its call names none (decision 0023). Two or more make a
   * multi-platform image; later builder calls keep the setting.
   *
   * @example
   * const image = Image.debianSlim().aptInstall("git").withPlatforms("linux/amd64", "linux/arm64");
   */
  withPlatforms(...platforms: string[]): Image {
    const checked = checkPlatforms(platforms, "withPlatforms");
    return new Image({ ...this.#state, platforms: checked });
  }

  /** Each platform's image of a built multi-platform image (its id, manifest digest and reference); undefined otherwise. */
  get platforms(): readonly PlatformImage[] | undefined {
    return this.#state.platformImages;
  }

  /** Bytes of build context the `build()` that produced this image uploaded (0 when all were cached). */
  get uploadedBytes(): number | undefined {
    return this.#state.uploadedBytes;
  }

  /** Lowers every layer for a builder version and hashes contexts and keys. No network. */
  async describe(params: P.ImageDescribeParams = {}): Promise<ImageDescription> {
    checkParams("describe", params);
    const platform = params.platform === undefined ? undefined : checkPlatforms([params.platform], "describe({ platform })")[0];
    return describeImage(this.#state.layers, this.#state.runtimeMounts, resolveBuilderVersion(params.builderVersion), platform);
  }

  // ---- internals: a null step or layer is a no-op call, which returns this image -------

  #extend(step: LayerStep | null): Image {
    return step === null ? this : new Image(extendState(this.#state, step));
  }

  #push(layer: LayerDef | null, forceBuild: boolean): Image {
    return layer === null ? this : new Image(pushLayer(this.#state, layer, forceBuild));
  }

  #addFiles(step: files.FilesStep | null): Image {
    return step === null ? this : new Image(files.addFiles(this.#state, step));
  }
}

export type { IgnoreSpec };
