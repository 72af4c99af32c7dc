/**
 * Which build-context paths a Dockerfile reads, computed the way BuildKit's Dockerfile
 * frontend decides what to request from the client: only stages the target needs count,
 * ARG/ENV are expanded with BuildKit's rules, URLs, Git sources, heredocs and other
 * stages are not context paths. Pure: runs in Node and in the Cloudflare Worker.
 */

import { type DispatchContext, dispatchState } from "./dispatch.ts";
import { EnvList } from "./env-list.ts";
import { DockerfileError } from "./errors.ts";
import { imageReferenceProblem } from "./image-ref.ts";
import type { ArgCommand, Stage } from "./instruction-types.ts";
import { parseStages } from "./instructions.ts";
import { parseDockerfile } from "./parser.ts";
import { joinPath } from "./posix-path.ts";
import { ShellLex } from "./shell-expand.ts";
import { addOnBuildTriggers, buildDependencyGraph, type DispatchState, DispatchStates, newState, reachableStates } from "./stage-graph.ts";
import { compareUtf8 } from "./text.ts";

export { DockerfileError } from "./errors.ts";
export type { DockerfileAst, Heredoc, Instruction, ParseWarning } from "./parser.ts";
// The parser is re-exported so callers need only this module.
export { parseDockerfile } from "./parser.ts";

/** Options of {@link dockerfileContextPaths}. */
export interface ContextPathsOptions {
  /** `--build-arg` values; they only override ARGs the Dockerfile declares. */
  buildArgs?: Record<string, string>;
  /** `--target`: the stage to build (default: the last stage). */
  target?: string;
  /** Target and build platform for `TARGETARCH` & co. (default `linux/amd64`). */
  platform?: string;
}

const SCRATCH = "scratch";

function platformArgs(platform: string, buildArgs: Record<string, string>, target: string): EnvList {
  const [os = "", arch = "", variant = ""] = platform.toLowerCase().split("/");
  const formatted = [os, arch, variant].filter((p) => p !== "").join("/");
  const defaults: [string, string][] = [
    ["BUILDPLATFORM", formatted],
    ["BUILDOS", os],
    ["BUILDOSVERSION", ""],
    ["BUILDARCH", arch],
    ["BUILDVARIANT", variant],
    ["TARGETPLATFORM", formatted],
    ["TARGETOS", os],
    ["TARGETOSVERSION", ""],
    ["TARGETARCH", arch],
    ["TARGETVARIANT", variant],
    ["TARGETSTAGE", target],
  ];
  return new EnvList(defaults.map(([k, v]) => [k, Object.hasOwn(buildArgs, k) ? (buildArgs[k] ?? v) : v]));
}

function expandMetaArgs(args: EnvList, lex: ShellLex, metaArgs: ArgCommand[], buildArgs: Record<string, string>): void {
  for (const cmd of metaArgs) {
    for (const kp of cmd.args) {
      let value = kp.value;
      if (Object.hasOwn(buildArgs, kp.key)) value = buildArgs[kp.key];
      else if (value !== undefined) value = expandOrThrow(lex, value, args, cmd.instruction);
      if (value !== undefined) args.set(kp.key, value);
    }
  }
}

function expandOrThrow(
  lex: ShellLex,
  word: string,
  env: EnvList,
  at: { startLine: number; endLine: number },
  wrap = (why: string) => why,
): string {
  try {
    return lex.processWord(word, env);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new DockerfileError(wrap(why), { startLine: at.startLine, endLine: at.endLine, cause: err });
  }
}

function buildStates(stages: Stage[], lex: ShellLex, globalArgs: EnvList): DispatchStates {
  const all = new DispatchStates();
  stages.forEach((st, i) => {
    const inst = st.instruction;
    const baseName = expandOrThrow(lex, st.baseName, globalArgs, inst);
    if (baseName === "") {
      throw new DockerfileError(`base name (${st.baseName}) should not be blank`, {
        startLine: inst.startLine,
        endLine: inst.endLine,
        hint: "give the ARG it uses a default or pass it with --build-arg",
      });
    }
    if (st.platform !== "") {
      const p = expandOrThrow(lex, st.platform, globalArgs, inst, (why) => `failed to process arguments for platform: ${why}`);
      if (p === "") {
        throw new DockerfileError(`empty platform value from expression ${st.platform}`, {
          startLine: inst.startLine,
          endLine: inst.endLine,
        });
      }
    }
    all.add(newState({ stage: st, baseName, name: st.name, stageName: st.name || `stage-${i}`, location: inst }));
  });
  return all;
}

function resolveTarget(all: DispatchStates, target: string | undefined): DispatchState {
  if (target === undefined || target === "") {
    const last = all.states[all.states.length - 1];
    if (last === undefined) throw new DockerfileError("dockerfile contains no stages to build");
    return last;
  }
  const found = all.byName(target);
  if (found === undefined) {
    const names = all.names();
    throw new DockerfileError(`target stage "${target}" could not be found`, {
      hint: names.length === 0 ? "no stage has a name; add AS <name> to a FROM" : `stages are: ${names.join(", ")}`,
    });
  }
  return found;
}

// BuildKit parses every base image reference, used or not; scratch and stages are exempt.
function resolveImages(all: DispatchStates, reachable: Set<DispatchState>): void {
  for (const d of all.states) {
    if (d.base !== undefined || d.dispatched || d.resolved) continue;
    d.resolved = reachable.has(d);
    if (d.baseName !== SCRATCH) {
      const problem = imageReferenceProblem(d.baseName);
      if (problem !== undefined) {
        const at = d.location;
        throw new DockerfileError(`failed to parse stage name "${d.baseName}": ${problem}`, {
          ...(at === undefined ? {} : { startLine: at.startLine, endLine: at.endLine }),
          hint: "image names are lower-case; stage names must match a stage defined above",
        });
      }
    }
    if (d.unregistered) d.dispatched = true;
  }
}

function resolveStages(all: DispatchStates, target: DispatchState, lex: ShellLex): Set<DispatchState> {
  for (;;) {
    const reachable = reachableStates(target);
    resolveImages(all, reachable);
    let newDeps = false;
    for (const d of reachable) if (addOnBuildTriggers(d, all, lex)) newDeps = true;
    if (!newDeps) return reachable;
  }
}

/** BuildKit's `normalizeContextPaths`: `/` (the whole context) wins, else sorted relative paths. */
function normalize(paths: Set<string>): string[] {
  if (paths.has("/")) return ["."];
  return [...paths].map((p) => joinPath(".", p)).sort(compareUtf8);
}

/**
 * The build-context paths BuildKit would request for `dockerfileText`: sources of COPY
 * (without `--from`), local ADD sources and `RUN --mount=type=bind` sources without
 * `from=`, in every stage the target needs. Paths are cleaned and relative to the context
 * root (`..` cannot leave it); `"."` means the whole context; glob patterns stay patterns.
 * Throws a `DockerfileError` (an `InvalidError`) where BuildKit would reject the file.
 */
export function dockerfileContextPaths(dockerfileText: string, opts: ContextPathsOptions = {}): string[] {
  if (dockerfileText === "") {
    throw new DockerfileError("the Dockerfile cannot be empty", { hint: "add at least a FROM instruction" });
  }
  const ast = parseDockerfile(dockerfileText);
  const { metaArgs, stages } = parseStages(ast);
  const last = stages[stages.length - 1];
  if (last === undefined) {
    throw new DockerfileError("dockerfile contains no stages to build", { hint: "add a FROM instruction" });
  }
  const buildArgs = opts.buildArgs ?? {};
  const lex = new ShellLex({ escapeToken: ast.escapeToken });
  const globalArgs = platformArgs(opts.platform ?? "linux/amd64", buildArgs, opts.target || last.name);
  expandMetaArgs(globalArgs, lex, metaArgs, buildArgs);

  const all = buildStates(stages, lex, globalArgs);
  const target = resolveTarget(all, opts.target);
  buildDependencyGraph(all, lex);
  const reachable = resolveStages(all, target, lex);

  const ctx: DispatchContext = { lex, globalArgs, buildArgs, ctxPaths: new Set() };
  for (const d of all.states) {
    if (reachable.has(d) && !d.dispatched) dispatchState(d, ctx);
  }
  return normalize(ctx.ctxPaths);
}
