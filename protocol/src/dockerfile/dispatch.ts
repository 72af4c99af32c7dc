/**
 * Replays a stage's commands the way BuildKit's dispatcher does, but only for what
 * decides which build-context paths are read: ARG/ENV bookkeeping, variable expansion
 * (and its errors) and the sources of COPY, ADD and `RUN --mount=type=bind`.
 */

import type { EnvList } from "./env-list.ts";
import { DockerfileError } from "./errors.ts";
import type { AddCommand, CopyCommand, RunCommand } from "./instruction-types.ts";
import { joinPath } from "./posix-path.ts";
import { parseMount } from "./run-mount.ts";
import { ShellLex } from "./shell-expand.ts";
import { sourceKind } from "./source-kind.ts";
import type { DispatchState, StateCommand } from "./stage-graph.ts";

/** What every command of a build needs besides its stage. */
export interface DispatchContext {
  /** Lexer with the Dockerfile's escape character. */
  lex: ShellLex;
  /** Global build arguments: platform defaults and ARGs before the first FROM. */
  globalArgs: EnvList;
  /** `--build-arg` values. */
  buildArgs: Record<string, string>;
  /** Collects `/`-rooted build-context paths. */
  ctxPaths: Set<string>;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Build arguments BuildKit never exports to the environment.
const NON_ENV_ARGS = new Set(["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"]);

/** Sets up a state's environment from its parent stage (or an empty image) and runs it. */
export function dispatchState(d: DispatchState, ctx: DispatchContext): void {
  if (d.base !== undefined) {
    d.env = d.base.env.clone();
    d.imageEnv = d.base.imageEnv.clone();
  }
  // BuildKit always sets PATH; an external image's own variables are not known here.
  if (!d.imageEnv.has("PATH")) d.imageEnv.set("PATH", DEFAULT_PATH);
  for (const [k, v] of d.imageEnv.entries()) d.env.set(k, v);
  d.dispatched = true;
  for (const c of d.commands) {
    try {
      dispatchCommand(d, c, ctx);
    } catch (err) {
      const inst = c.cmd.instruction;
      if (err instanceof DockerfileError) throw err.at(inst.startLine, inst.endLine);
      const why = err instanceof Error ? err.message : String(err);
      throw new DockerfileError(why, { startLine: inst.startLine, endLine: inst.endLine, cause: err });
    }
  }
}

function dispatchCommand(d: DispatchState, c: StateCommand, ctx: DispatchContext): void {
  const cmd = c.cmd;
  const expand = (word: string) => ctx.lex.processWord(word, d.env);
  switch (cmd.kind) {
    case "arg":
      dispatchArg(d, cmd.args, ctx);
      return;
    case "env": {
      const pairs = cmd.env.map((kv) => [expand(kv.key), expand(kv.value)] as const);
      for (const [k, v] of pairs) {
        d.env.set(k, v);
        d.imageEnv.set(k, v);
      }
      return;
    }
    case "label":
      for (const kv of cmd.labels) {
        expand(kv.key);
        expand(kv.value);
      }
      return;
    case "workdir":
      expand(cmd.path);
      return;
    case "user":
      expand(cmd.user);
      return;
    case "stopsignal":
      expand(cmd.signal);
      return;
    case "volume":
      for (const v of cmd.volumes) {
        if (expand(v) === "") throw new DockerfileError("VOLUME specified can not be an empty string");
      }
      return;
    case "expose":
      for (const p of cmd.ports) ctx.lex.processWords(p, d.env);
      return;
    case "copy":
      dispatchCopy(d, cmd, c.sources[0], ctx);
      return;
    case "add":
      dispatchAdd(d, cmd, ctx);
      return;
    case "run":
      dispatchRun(d, cmd, c.sources, ctx);
      return;
    default:
      return;
  }
}

function dispatchArg(d: DispatchState, args: readonly { key: string; value: string | undefined }[], ctx: DispatchContext): void {
  for (const arg of args) {
    const hasBuildArg = Object.hasOwn(ctx.buildArgs, arg.key);
    let value = arg.value;
    if (hasBuildArg) {
      // --build-arg only applies to names a stage (or the global scope) declares.
      value = ctx.buildArgs[arg.key];
    } else if (value !== undefined) {
      value = ctx.lex.processWord(value, d.env);
    } else {
      value = ctx.globalArgs.get(arg.key);
    }
    if (value !== undefined && !NON_ENV_ARGS.has(arg.key)) d.env.set(arg.key, value);
  }
}

/** Expands COPY/ADD's flags and paths in place of BuildKit's `Expand`/`ExpandRaw`. */
function expandSources(d: DispatchState, cmd: CopyCommand | AddCommand, ctx: DispatchContext): string[] {
  const expand = (word: string) => ctx.lex.processWord(word, d.env);
  expand(cmd.chown);
  expand(cmd.chmod);
  if (cmd.kind === "add") expand(cmd.checksum);
  for (const p of cmd.exclude) expand(p);
  const sources = cmd.sourcePaths.map(expand);
  expand(cmd.destPath);
  // Heredoc bodies expand without quote processing and always with `\` as escape.
  const raw = new ShellLex({ skipProcessQuotes: true });
  for (const content of cmd.sourceContents) if (content.expand) raw.processWord(content.data, d.env);
  return sources;
}

function rejectRemote(src: string, command: string): void {
  const kind = sourceKind(src);
  if (kind === "git") {
    throw new DockerfileError(`source can't be a git ref for ${command}`, { hint: "use ADD to add a Git repository" });
  }
  if (kind === "url") throw new DockerfileError(`source can't be a URL for ${command}`, { hint: "use ADD to download a URL" });
}

function dispatchCopy(d: DispatchState, cmd: CopyCommand, from: DispatchState | undefined, ctx: DispatchContext): void {
  const sources = expandSources(d, cmd, ctx);
  if (from !== undefined && !from.dispatched) {
    throw new DockerfileError(`cannot copy from stage "${cmd.from}", it needs to be defined before current stage "${d.stageName}"`, {
      hint: `move the "${cmd.from}" stage above this one`,
    });
  }
  for (const src of sources) rejectRemote(src, "COPY");
  if (from !== undefined) return;
  for (const src of sources) ctx.ctxPaths.add(joinPath("/", src));
}

function dispatchAdd(d: DispatchState, cmd: AddCommand, ctx: DispatchContext): void {
  const sources = expandSources(d, cmd, ctx);
  if (cmd.checksum !== "") {
    if (sources.length !== 1) throw new DockerfileError("checksum can't be specified for multiple sources");
    if (sourceKind(sources[0] ?? "") === "local") throw new DockerfileError("checksum requires HTTP(S) or Git sources");
  }
  for (const src of sources) {
    // URLs and Git repositories are fetched by the builder, not read from the context.
    if (sourceKind(src) === "local") ctx.ctxPaths.add(joinPath("/", src));
  }
}

function dispatchRun(d: DispatchState, cmd: RunCommand, sources: (DispatchState | undefined)[], ctx: DispatchContext): void {
  cmd.mounts.forEach((spec, i) => {
    const m = parseMount(spec, (word) => ctx.lex.processWord(word, d.env));
    if (m.type === "secret" || m.type === "ssh") return;
    const from = m.from === "" && m.type === "cache" ? "scratch" : m.from;
    const src = sources[i];
    if (from !== "" && src !== undefined && !src.dispatched) {
      throw new DockerfileError(`cannot mount from stage "${from}" to "${m.target}", stage needs to be defined before current command`, {
        hint: `move the "${from}" stage above this one`,
      });
    }
    if (from === "" && m.type === "bind") ctx.ctxPaths.add(joinPath("/", m.source));
  });
}
