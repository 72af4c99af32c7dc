/**
 * Argument handling of `Image`'s Python and conda package methods (pip, private repos,
 * requirements files, pyproject.toml, poetry, uv, micromamba). Each checks a call at call
 * time, as Modal does, and returns the step that lowers it, or null when there is nothing to
 * install. The Dockerfile lines themselves come from lowering/python-packages.ts.
 */
import path from "node:path";
import { assertStringList, flattenStrings, splitParams } from "./args.ts";
import { InvalidError, NotFoundError } from "./errors.ts";
import { rejectOptionLike } from "./image-checks.ts";
import type * as P from "./image-params.ts";
import type { LayerStep } from "./image-state.ts";
import { requireFile, resolveLocal } from "./local-files.ts";
import * as py from "./lowering/python-packages.ts";
import type { ContextSource } from "./lowering/types.ts";
import { checkParams } from "./param-check.ts";
import { collectSecrets } from "./secret.ts";
import { shellQuote } from "./shell-quote.ts";

/** `Image.pipInstall(...packages, params?)`. */
export function pipInstallStep(args: readonly unknown[]): LayerStep | null {
  const { items, params } = splitParams<P.ImagePipInstallParams>(args);
  checkParams("pipInstall", params);
  const packages = flattenStrings("pip_install", "packages", items);
  if (packages.length === 0) return null;
  rejectOptionLike("Image.pipInstall", packages);
  return { params, lower: (v) => py.pipInstallLayer(packages, params, v) };
}

/** `Image.pipInstallPrivateRepos(...repositories, params)`: secrets and a git user are required. */
export function privateReposStep(args: readonly unknown[]): LayerStep | null {
  const { items, params } = splitParams<P.ImagePipInstallPrivateReposParams>(args);
  checkParams("pipInstallPrivateRepos", params);
  const repositories = flattenStrings("pip_install_private_repos", "repositories", items);
  if (!params.secrets?.length) {
    throw new InvalidError("No secrets provided to function. Installing private packages requires tokens to be passed via Secret objects.");
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
  if (repositories.length === 0) return null;
  const names = collectSecrets(params.secrets, params.env).map(String).join(",");
  return { params, lower: (v) => py.privateReposLayer(repositories, params.gitUser!, names, params, v) };
}

/** `Image.pipInstallFromRequirements`: the file is sent in the build context. */
export function requirementsStep(requirementsTxt: string, params: P.ImagePipInstallFromRequirementsParams): LayerStep {
  const file = requireFile(requirementsTxt, "requirements file");
  return { params, lower: (v) => py.requirementsLayer(file, params, v) };
}

/** `Image.pipInstallFromPyproject`: the file is parsed when lowering, never uploaded. */
export function pyprojectStep(pyprojectToml: string, params: P.ImagePipInstallFromPyprojectParams): LayerStep {
  const file = requireFile(pyprojectToml, "pyproject.toml");
  const optional = params.optionalDependencies ?? [];
  assertStringList(optional, "optionalDependencies must be a list of strings.");
  return { params, lower: (v) => py.pyprojectLayer(file, optional, params, v) };
}

/** `Image.poetryInstallFromFile`: finds the lockfile next to the pyproject unless told otherwise. */
export function poetryStep(poetryPyprojectToml: string, params: P.ImagePoetryInstallFromFileParams): LayerStep {
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
  return { params, lower: (v) => py.poetryLayer(pyproject, options, v) };
}

/** `Image.uvPipInstall(...packages, params?)`, optionally from local requirements files. */
export function uvPipInstallStep(args: readonly unknown[]): LayerStep | null {
  const { items, params } = splitParams<P.ImageUvPipInstallParams>(args);
  checkParams("uvPipInstall", params);
  const packages = flattenStrings("uv_pip_install", "packages", items);
  if (params.requirements !== undefined) assertStringList(params.requirements, "requirements must be None or a list of strings");
  const requirements = (params.requirements ?? []).map((r) => requireFile(r, "requirements file"));
  if (packages.length === 0 && requirements.length === 0) return null;
  rejectOptionLike("Image.uvPipInstall", packages);
  return { params, lower: () => py.uvPipInstallLayer(packages, { ...params, requirements }) };
}

/** `Image.uvSync(dir?, params?)`: the project is read when lowering, so a missing pyproject.toml fails then. */
export function uvSyncStep(uvProjectDir: string | P.ImageUvSyncParams, params: P.ImageUvSyncParams): LayerStep {
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
  return { params: opts, lower: () => py.uvSyncLayer(resolved, dir, options) };
}

/** `Image.micromambaInstall(...packages, params?)`, optionally from a local spec file. */
export function micromambaInstallStep(args: readonly unknown[]): LayerStep | null {
  const { items, params } = splitParams<P.ImageMicromambaInstallParams>(args);
  checkParams("micromambaInstall", params);
  const packages = flattenStrings("micromamba_install", "packages", items);
  const specFile = params.specFile === undefined ? undefined : requireFile(params.specFile, "spec file");
  if (packages.length === 0 && !specFile) return null;
  const channels = params.channels ?? [];
  assertStringList(channels, "channels must be a list of strings.");
  const lower = () => {
    const base = specFile ? path.basename(specFile) : "";
    const commands = ["FROM base", ...(specFile ? [`COPY /${base} /${base}`] : [])];
    const specArgs = specFile ? `${packages.length ? " " : ""}-f /${base} -n base` : "";
    const channelArgs = channels.map((c) => ` -c ${c}`).join("");
    commands.push(`RUN micromamba install ${packages.map(shellQuote).join(" ")}${specArgs}${channelArgs} --yes`);
    const context: ContextSource[] = specFile ? [{ kind: "file", localPath: specFile, archivePath: base }] : [];
    return { commands, context };
  };
  return { params, lower };
}
