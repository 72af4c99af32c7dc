/**
 * The graph of build stages BuildKit builds before dispatching anything
 * (`dockerfile2llb`'s dispatch states): which stage each FROM, `COPY --from` and
 * `RUN --mount=from=` refers to, which stages the target needs, and ONBUILD triggers
 * inherited from a parent stage.
 */

import { EnvList } from "./env-list.ts";
import { DockerfileError, withLocation } from "./errors.ts";
import type { Command, Stage } from "./instruction-types.ts";
import { parseInstruction } from "./instructions.ts";
import type { Instruction } from "./parser.ts";
import { parseDockerfile } from "./parser.ts";
import { EMPTY_ENV, type ShellLex } from "./shell-expand.ts";

/** A command with the states it reads from (one per `--mount`, or the `--from` stage). */
export interface StateCommand {
  /** The typed command. */
  cmd: Command;
  /** States the command reads from; `undefined` where a mount reads none. */
  sources: (DispatchState | undefined)[];
  /** True for a trigger inherited through ONBUILD. */
  isOnBuild: boolean;
}

/** A stage, or an image that a `--from`/`from=` names, as BuildKit tracks it. */
export interface DispatchState {
  /** The FROM stage, or `undefined` for an image only named by `--from`. */
  stage: Stage | undefined;
  /** Base image or stage after ARG expansion. */
  baseName: string;
  /** Lower-cased stage name, or "". */
  name: string;
  /** Name used in messages: the stage name, `stage-N`, or "" for images. */
  stageName: string;
  /** Where the state was declared, for error messages. */
  location: Instruction | undefined;
  /** The earlier stage this one starts FROM, if any. */
  base: DispatchState | undefined;
  /** States read by this state's commands. */
  deps: Map<DispatchState, Command>;
  /** The commands, ONBUILD triggers first. */
  commands: StateCommand[];
  /** True for images named only by `--from`/`from=`. */
  unregistered: boolean;
  /** Set once the state has been built (images: once resolved). */
  dispatched: boolean;
  /** Set once the base image has been resolved for a reachable state. */
  resolved: boolean;
  /** Set once inherited ONBUILD triggers have been added. */
  onBuildInit: boolean;
  /** The environment (ENV and ARG values) at the end of the state, once dispatched. */
  env: EnvList;
  /** The image-config environment (ENV values only), once dispatched. */
  imageEnv: EnvList;
}

/** All states in BuildKit's order: stages first, then images as they are discovered. */
export class DispatchStates {
  /** The states in order; `COPY --from=<index>` indexes this list. */
  readonly states: DispatchState[] = [];
  readonly #byName = new Map<string, DispatchState>();

  /** Adds a state; its base is an earlier stage whose name equals its base name exactly. */
  add(ds: DispatchState): void {
    this.states.push(ds);
    const base = this.#byName.get(ds.baseName);
    if (base !== undefined) ds.base = base;
    if (ds.name !== "") this.#byName.set(ds.name, ds);
  }

  /** Finds a named stage, case-insensitively. */
  byName(name: string): DispatchState | undefined {
    return this.#byName.get(name.toLowerCase());
  }

  /** Names of all named stages. */
  names(): string[] {
    return [...this.#byName.keys()];
  }
}

/** A fresh state; `stage` is undefined for an image named by `--from`. */
export function newState(init: Partial<DispatchState> & { baseName: string }): DispatchState {
  return {
    stage: undefined,
    name: "",
    stageName: "",
    location: undefined,
    base: undefined,
    deps: new Map(),
    commands: [],
    unregistered: false,
    dispatched: false,
    resolved: false,
    onBuildInit: false,
    env: new EnvList(),
    imageEnv: new EnvList(),
    ...init,
  };
}

/** Go's `strconv.Atoi`: a decimal int64 with an optional sign, else `undefined`. */
function atoi(s: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = BigInt(s);
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) return undefined;
  return Number(n);
}

/** The states a command reads from (BuildKit's `toCommand`). */
export function commandSources(cmd: Command, all: DispatchStates, lex: ShellLex): (DispatchState | undefined)[] {
  const inst = cmd.instruction;
  if (cmd.kind === "copy" && cmd.from !== "") {
    let expanded: string;
    try {
      expanded = lex.processWord(cmd.from, EMPTY_ENV);
    } catch (err) {
      throw new DockerfileError(err instanceof Error ? err.message : String(err), { startLine: inst.startLine, endLine: inst.endLine });
    }
    if (expanded !== cmd.from) {
      throw new DockerfileError(
        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
        { startLine: inst.startLine, endLine: inst.endLine },
      );
    }
    const index = atoi(cmd.from);
    if (index === undefined) {
      const found = all.byName(cmd.from);
      return [found ?? newState({ baseName: cmd.from, unregistered: true, location: inst })];
    }
    const found = index >= 0 ? all.states[index] : undefined;
    if (found === undefined) {
      throw new DockerfileError(`invalid stage index ${index}`, {
        startLine: inst.startLine,
        endLine: inst.endLine,
        hint: `--from=<n> counts stages from 0; this Dockerfile has ${all.states.length} at this point`,
      });
    }
    return [found];
  }
  if (cmd.kind === "run") {
    // Every mount gets a source; mounts without from= get "scratch", like BuildKit.
    return cmd.mountFroms.map((from) => {
      const name = from === "" ? "scratch" : from;
      return all.byName(name) ?? newState({ baseName: name, unregistered: true });
    });
  }
  return [];
}

/** Fills each state's commands and dependencies, then rejects dependency cycles. */
export function buildDependencyGraph(all: DispatchStates, lex: ShellLex): void {
  const registered = [...all.states];
  for (const d of registered) {
    d.commands = (d.stage?.commands ?? []).map((cmd) => {
      const sources = commandSources(cmd, all, lex);
      addDeps(d, cmd, sources, all);
      return { cmd, sources, isOnBuild: false };
    });
  }
  validateNoCycles(all.states);
}

function addDeps(d: DispatchState, cmd: Command, sources: (DispatchState | undefined)[], all: DispatchStates): void {
  for (const src of sources) {
    if (src === undefined) continue;
    d.deps.set(src, cmd);
    if (src.unregistered) all.add(src);
  }
}

function validateNoCycles(states: DispatchState[]): void {
  const visited = new Set<DispatchState>();
  const path = new Set<DispatchState>();
  const visit = (s: DispatchState): Command | undefined => {
    if (visited.has(s)) return undefined;
    visited.add(s);
    path.add(s);
    for (const [dep, cmd] of s.deps) {
      if (path.has(dep)) return cmd;
      const found = visit(dep);
      if (found !== undefined) return found;
    }
    path.delete(s);
    return undefined;
  };
  for (const s of states) {
    const cmd = visit(s);
    if (cmd !== undefined) {
      throw new DockerfileError(`circular dependency detected on stage: ${s.stageName}`, {
        startLine: cmd.instruction.startLine,
        endLine: cmd.instruction.endLine,
        hint: "a stage cannot copy or mount from itself or from a stage that depends on it",
      });
    }
  }
}

/** Every state `target` needs: itself, its base chain and everything it reads from. */
export function reachableStates(target: DispatchState): Set<DispatchState> {
  const seen = new Set<DispatchState>();
  const stack = [target];
  while (stack.length > 0) {
    const s = stack.pop();
    if (s === undefined || seen.has(s)) continue;
    seen.add(s);
    if (s.base !== undefined) stack.push(s.base);
    for (const dep of s.deps.keys()) stack.push(dep);
  }
  return seen;
}

/**
 * Prepends the ONBUILD triggers of `d`'s parent stage to `d`'s commands (once). Returns
 * true if a trigger reads from another state, which can make more stages reachable.
 */
export function addOnBuildTriggers(d: DispatchState, all: DispatchStates, lex: ShellLex): boolean {
  if (d.base === undefined || d.onBuildInit) return false;
  d.onBuildInit = true;
  const triggers = d.base.commands.flatMap((c) => (c.cmd.kind === "onbuild" ? [c.cmd] : []));
  let newDeps = false;
  const added: StateCommand[] = [];
  const where = d.stage?.instruction;
  for (const trigger of triggers) {
    let cmd: Command;
    try {
      const ast = parseDockerfile(trigger.expression);
      const node = ast.instructions[0];
      if (ast.instructions.length !== 1 || node === undefined) {
        throw new DockerfileError("onbuild trigger should be a single expression");
      }
      const parsed = parseInstruction(node);
      if (parsed.kind === "from") throw new DockerfileError("FROM isn't allowed as an ONBUILD trigger");
      cmd = { ...parsed, instruction: { ...node, startLine: where?.startLine ?? 0, endLine: where?.endLine ?? 0 } };
    } catch (err) {
      throw where === undefined ? err : withLocation(err, where.startLine, where.endLine);
    }
    const sources = commandSources(cmd, all, lex);
    if (sources.length > 0) newDeps = true;
    addDeps(d, cmd, sources, all);
    added.push({ cmd, sources, isOnBuild: true });
  }
  d.commands = [...added, ...d.commands];
  return newDeps;
}
