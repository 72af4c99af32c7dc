/**
 * Argument handling of `Image`'s raw-step and image-config methods: apt packages, `RUN`
 * lines, verbatim Dockerfile lines, `ENV`, `WORKDIR` and the JSON-array instructions
 * (`ENTRYPOINT`, `SHELL`, `CMD`). Each checks a call at call time and returns what `Image`
 * appends, or null when there is nothing to add.
 */
import { assertStringList, flattenStrings, splitParams } from "./args.ts";
import { dockerContextSources } from "./docker-context.ts";
import { InvalidError } from "./errors.ts";
import { checkBuildArgs } from "./image-checks.ts";
import type * as P from "./image-params.ts";
import type { LayerStep } from "./image-state.ts";
import { type LayerDef, layerCommon } from "./layer-def.ts";
import { archivePathOf, remoteTarget, requireDir, requireFile } from "./local-files.ts";
import type { ContextSource } from "./lowering/types.ts";
import { checkParams } from "./param-check.ts";
import { shellQuote } from "./shell-quote.ts";
import { cacheMountFlags } from "./volume.ts";

/** `Image.aptInstall(...packages, params?)`: packages are installed in the order given. */
export function aptInstallStep(args: readonly unknown[]): LayerStep | null {
  const { items, params } = splitParams<P.LayerParams>(args);
  checkParams("aptInstall", params);
  const packages = flattenStrings("apt_install", "packages", items);
  if (packages.length === 0) return null;
  const line = `RUN apt-get install -y ${packages.map(shellQuote).join(" ")}`;
  return { params, lower: () => ({ commands: ["FROM base", "RUN apt-get update", line], context: [] }) };
}

/** `Image.runCommands(...commands, params?)`: one `RUN` line each, verbatim. */
export function runCommandsStep(args: readonly unknown[]): LayerStep | null {
  const { items, params } = splitParams<P.ImageRunCommandsParams>(args);
  checkParams("runCommands", params);
  const commands = flattenStrings("run_commands", "commands", items);
  const mounts = cacheMountFlags("runCommands", params?.volumes).map((flag) => `${flag} `);
  if (commands.length === 0) return null;
  return { params, lower: () => ({ commands: ["FROM base", ...commands.map((c) => `RUN ${mounts.join("")}${c}`)], context: [] }) };
}

/** `Image.dockerfileCommands(...lines, params?)`: local `COPY`/`ADD` sources join the context. */
export function dockerfileCommandsStep(args: readonly unknown[]): LayerStep | null {
  const { items, params } = splitParams<P.ImageDockerfileCommandsParams>(args);
  checkParams("dockerfileCommands", params);
  const lines = flattenStrings("dockerfile_commands", "dockerfile_commands", items);
  if (lines.length === 0) return null;
  const contextDir = params.contextDir === undefined ? process.cwd() : requireDir(params.contextDir);
  const buildArgs = checkBuildArgs(params.buildArgs);
  const files: ContextSource[] = Object.entries(params.contextFiles ?? {}).map(([remote, local]) => ({
    kind: "file",
    localPath: requireFile(local, "context file"),
    archivePath: archivePathOf(remoteTarget("dockerfileCommands", remote)),
  }));
  const lower = () => {
    const commands = ["FROM base", ...lines];
    const context = [...files, ...dockerContextSources(commands.join("\n"), { contextDir, ignore: params.ignore, buildArgs })];
    return { commands, context };
  };
  return { params: { ...params, buildArgs }, lower };
}

/** `Image.env(vars)`: `ENV k=v` lines, values shell-quoted as Modal does. */
export function envLayer(vars: Record<string, string>): LayerDef | null {
  if (vars === null || typeof vars !== "object" || Array.isArray(vars))
    throw new InvalidError("Image.env expects an object of string values.");
  const invalid = Object.entries(vars)
    .filter(([, v]) => typeof v !== "string")
    .map(([k]) => `'${k}'`);
  if (invalid.length) throw new InvalidError(`Image ENV variables must be strings. Invalid keys: [${invalid.join(", ")}]`);
  const entries = Object.entries(vars);
  if (entries.length === 0) return null;
  return {
    ...layerCommon({}),
    lower: () => ({ commands: ["FROM base", ...entries.map(([k, v]) => `ENV ${k}=${shellQuote(v)}`)], context: [] }),
  };
}

/** `Image.workdir(dir)`: the working directory for later build steps and containers. */
export function workdirLayer(dir: string): LayerDef {
  if (typeof dir !== "string" || dir === "") throw new InvalidError("Image.workdir expects a non-empty path string.");
  return { ...layerCommon({}), lower: () => ({ commands: ["FROM base", `WORKDIR ${shellQuote(dir)}`], context: [] }) };
}

/** An `ENTRYPOINT`/`SHELL`/`CMD` line in JSON-array form; `message` is the error for a non-list. */
export function jsonArrayStep(instruction: string, values: unknown, message: string): LayerStep {
  assertStringList(values, message);
  // Modal joins raw strings, leaving inner quotes unescaped; JSON.stringify escapes them
  // and is otherwise identical for plain strings.
  const line = `${instruction} [${values.map((v) => JSON.stringify(v)).join(", ")}]`;
  return { params: {}, lower: () => ({ commands: ["FROM base", line], context: [] }) };
}
