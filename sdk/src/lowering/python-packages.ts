/**
 * Dockerfile lines for the Python package methods: pip, private repos, requirements files,
 * pyproject.toml, poetry, uv. Lines match what Modal generates for the same call.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { type BuilderVersion, versionAtMost } from "@kiln-build/protocol";
import { parse as parseToml } from "smol-toml";
import { pySorted } from "../args.ts";
import { InvalidError, NotFoundError } from "../errors.ts";
import { shellJoin, shellQuote } from "../shell-quote.ts";
import type { LoweredLayer } from "./types.ts";

/** Index and option flags shared by the pip-based methods. */
export type PipOptions = {
  findLinks?: string;
  indexUrl?: string;
  extraIndexUrl?: string;
  pre?: boolean;
  extraOptions?: string;
};

/** The option string Modal appends to pip commands; `pre` alone yields a leading space. */
export function pipExtraArgs(options: PipOptions): string {
  const flags: [string, string | undefined][] = [
    ["--find-links", options.findLinks],
    ["--index-url", options.indexUrl],
    ["--extra-index-url", options.extraIndexUrl],
  ];
  let args = flags
    .filter(([, value]) => value !== undefined && value !== null)
    .map(([flag, value]) => `${flag} ${shellQuote(value!)}`)
    .join(" ");
  if (options.pre) args += " --pre";
  if (options.extraOptions) args += `${args ? " " : ""}${options.extraOptions}`;
  return args;
}

// 2023.12 kept a trailing space on pip lines; later builders strip every line.
function finish(version: BuilderVersion, commands: string[]): string[] {
  return version === "2023.12" ? commands : commands.map((c) => c.trim());
}

/** `pipInstall`: packages sorted by plain string order, not deduplicated. */
export function pipInstallLayer(packages: string[], options: PipOptions, version: BuilderVersion): LoweredLayer {
  const line = `RUN python -m pip install ${shellJoin(pySorted(packages))} ${pipExtraArgs(options)}`;
  return { commands: ["FROM base", ...finish(version, [line])], context: [] };
}

/** `pipInstallPrivateRepos`: one token check per host family, then one install per repo. */
export function privateReposLayer(
  repositories: string[],
  gitUser: string,
  secretNames: string,
  options: PipOptions,
  version: BuilderVersion,
): LoweredLayer {
  const extra = pipExtraArgs(options);
  const commands: string[] = [];
  for (const [prefix, variable] of [
    ["github.com/", "GITHUB_TOKEN"],
    ["gitlab.com/", "GITLAB_TOKEN"],
  ] as const) {
    if (!repositories.some((r) => r.startsWith(prefix))) continue;
    commands.push(
      `RUN bash -c "[[ -v ${variable} ]] || (echo '${variable} env var not set by provided Secret(s): ${secretNames}' && exit 1)"`,
    );
  }
  commands.push("RUN apt-get update && apt-get install -y git");
  for (const repo of repositories) {
    // The token stays a shell variable, expanded at build time, so it never enters the definition.
    const variable = repo.startsWith("github.com/") ? "$GITHUB_TOKEN" : "$GITLAB_TOKEN";
    commands.push(`RUN python3 -m pip install "git+https://${gitUser}:${variable}@${repo}" ${extra}`);
  }
  return { commands: ["FROM base", ...finish(version, commands)], context: [] };
}

/** `pipInstallFromRequirements`: the file travels in the context as `/.requirements.txt`. */
export function requirementsLayer(localPath: string, options: PipOptions, version: BuilderVersion): LoweredLayer {
  // On 2023.12 Modal leaves a blank where `-f` would go (kept as trailing space there).
  const findLinks = options.findLinks ? ` -f ${options.findLinks}` : version === "2023.12" ? " " : "";
  const line = `RUN python -m pip install -r /.requirements.txt${findLinks} ${pipExtraArgs(options)}`;
  return {
    commands: ["FROM base", "COPY /.requirements.txt /.requirements.txt", ...finish(version, [line])],
    context: [{ kind: "file", localPath, archivePath: ".requirements.txt" }],
  };
}

/** `pipInstallFromPyproject`: the file is parsed locally and never uploaded. */
export function pyprojectLayer(
  localPath: string,
  optionalDependencies: string[],
  options: PipOptions,
  version: BuilderVersion,
): LoweredLayer {
  const project = readToml(localPath).project as Record<string, unknown> | undefined;
  const dependencies = project?.dependencies;
  if (!Array.isArray(dependencies)) {
    throw new InvalidError(
      `No [project.dependencies] section in ${localPath}. Declare dependencies under [project] ` +
        "(https://packaging.python.org/en/latest/guides/writing-pyproject-toml), or use Image.poetryInstallFromFile for a Poetry project.",
    );
  }
  const optional = (project?.["optional-dependencies"] ?? {}) as Record<string, unknown>;
  const packages = [...dependencies.map(String)];
  // Unknown optional groups are skipped silently, as in Modal.
  for (const group of optionalDependencies) {
    const extra = optional[group];
    if (Array.isArray(extra)) packages.push(...extra.map(String));
  }
  const line = `RUN python -m pip install ${shellJoin(pySorted(packages))} ${pipExtraArgs(options)}`;
  return { commands: ["FROM base", ...finish(version, [line])], context: [] };
}

/** Options of the poetry lowering. */
export type PoetryOptions = {
  lockfile: string | null;
  withGroups: string[];
  without: string[];
  only: string[];
  poetryVersion: string | null;
  oldInstaller: boolean;
};

/** `poetryInstallFromFile`: continuation lines end in a literal backslash-space, as in Modal. */
export function poetryLayer(pyproject: string, options: PoetryOptions, version: BuilderVersion): LoweredLayer {
  const commands = ["FROM base"];
  if (options.poetryVersion !== null) {
    const pin = options.poetryVersion === "latest" ? (versionAtMost(version, "2024.10") ? "~=1.7" : "") : `==${options.poetryVersion}`;
    commands.push(`RUN python -m pip install poetry${pin}`);
  }
  if (options.oldInstaller) commands.push("RUN poetry config experimental.new-installer false");
  const context: LoweredLayer["context"] = [];
  if (options.lockfile !== null) {
    commands.push("COPY /.poetry.lock /tmp/poetry/poetry.lock");
    context.push({ kind: "file", localPath: options.lockfile, archivePath: ".poetry.lock" });
  }
  commands.push("COPY /.pyproject.toml /tmp/poetry/pyproject.toml");
  context.push({ kind: "file", localPath: pyproject, archivePath: ".pyproject.toml" });
  let install = "poetry install --no-root";
  if (options.withGroups.length) install += ` --with ${options.withGroups.join(",")}`;
  if (options.without.length) install += ` --without ${options.without.join(",")}`;
  if (options.only.length) install += ` --only ${options.only.join(",")}`;
  install += " --compile";
  commands.push(
    "RUN cd /tmp/poetry && \\ ",
    "  poetry config virtualenvs.create false && \\ ",
    `${version === "2023.12" ? "  " : ""}${install}`,
  );
  return { commands, context };
}

/** Options of `uvPipInstall`. */
export type UvPipOptions = PipOptions & { requirements: string[]; uvVersion?: string };

const UV_ROOT = "/.uv";

function uvCopyLine(uvVersion: string | undefined): string {
  return `COPY --from=ghcr.io/astral-sh/uv:${uvVersion ?? "latest"} /uv ${UV_ROOT}/uv`;
}

/** `uvPipInstall`: uv is copied from its official image and targets the image's `python`. */
export function uvPipInstallLayer(packages: string[], options: UvPipOptions): LoweredLayer {
  const commands = ["FROM base", uvCopyLine(options.uvVersion)];
  const context: LoweredLayer["context"] = [];
  const args = ["--python $(command -v python)", "--compile-bytecode"];
  if (options.findLinks) args.push(`--find-links ${shellQuote(options.findLinks)}`);
  if (options.indexUrl) args.push(`--index-url ${shellQuote(options.indexUrl)}`);
  if (options.extraIndexUrl) args.push(`--extra-index-url ${shellQuote(options.extraIndexUrl)}`);
  if (options.pre) args.push("--prerelease allow");
  if (options.extraOptions) args.push(options.extraOptions);
  const requirementArgs: string[] = [];
  options.requirements.forEach((localPath, idx) => {
    const base = path.basename(localPath);
    commands.push(`COPY /.${idx}_${base} ${UV_ROOT}/${idx}/${base}`);
    context.push({ kind: "file", localPath, archivePath: `.${idx}_${base}` });
    requirementArgs.push(`--requirements ${UV_ROOT}/${idx}/${base}`);
  });
  if (requirementArgs.length) args.push(requirementArgs.join(" "));
  args.push(...pySorted(packages).map(shellQuote));
  commands.push(`RUN ${UV_ROOT}/uv pip install ${args.join(" ")}`);
  return { commands, context };
}

/** Options of `uvSync`. */
export type UvSyncOptions = { groups: string[]; extras: string[]; frozen: boolean; extraOptions: string; uvVersion?: string };

/** `uvSync`: installs a uv project's locked dependencies into a venv at `/.uv/.venv`. */
export function uvSyncLayer(projectDir: string, displayDir: string, options: UvSyncOptions): LoweredLayer {
  const pyproject = path.join(projectDir, "pyproject.toml");
  // Shown as the caller wrote it, joined like Python's os.path.join ("./" stays "./").
  const shown = `${displayDir}${displayDir.endsWith("/") ? "" : "/"}pyproject.toml`;
  const toml = readToml(pyproject, `Expected ${shown} to exist`);
  const tool = toml.tool as Record<string, Record<string, unknown>> | undefined;
  if (tool?.uv?.workspace !== undefined) throw new InvalidError("uv workspaces are not supported");
  const commands = ["FROM base", uvCopyLine(options.uvVersion), `COPY /.pyproject.toml ${UV_ROOT}/pyproject.toml`];
  const context: LoweredLayer["context"] = [{ kind: "file", localPath: pyproject, archivePath: ".pyproject.toml" }];
  const args = [`--project=${UV_ROOT}`, "--no-install-workspace", "--compile-bytecode"];
  args.push(...options.groups.map((g) => `--group=${g}`), ...options.extras.map((e) => `--extra=${e}`));
  if (options.extraOptions) args.push(options.extraOptions);
  const lock = path.join(projectDir, "uv.lock");
  if (existsSync(lock)) {
    commands.push(`COPY /.uv.lock ${UV_ROOT}/uv.lock`);
    context.push({ kind: "file", localPath: lock, archivePath: ".uv.lock" });
    if (options.frozen) args.push("--frozen");
  }
  commands.push(`RUN ${UV_ROOT}/uv sync ${args.join(" ").trim()}`, `ENV PATH=${UV_ROOT}/.venv/bin:$PATH`);
  return { commands, context };
}

function readToml(file: string, missingMessage?: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    // uvSync's message is Modal's, raised as InvalidError as Modal does.
    if (missingMessage) throw new InvalidError(missingMessage);
    throw new NotFoundError(`File not found: ${file}. Check the path (relative paths resolve from the current directory).`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidError(`${file} is not valid TOML: ${(error as Error).message.split("\n")[0]}`);
  }
}
