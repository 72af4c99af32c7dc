/**
 * Kiln's port of BuildKit's Dockerfile front-end: the parser, the shell lexer, stage and
 * instruction parsing, and the context paths a Dockerfile reads. The layer spec carries
 * Dockerfile lines, so the SDK (which writes and checks them) and the runner (which plans
 * and renders them) read them with this one grammar. Pure: runs on Node and workerd.
 */
export { dockerfileContextPaths } from "./context-paths.ts";
export { EnvList } from "./env-list.ts";
export { DockerfileError, type DockerfileErrorOptions } from "./errors.ts";
export type { ArgCommand } from "./instruction-types.ts";
export { parseStages } from "./instructions.ts";
export { type Instruction, parseDockerfile } from "./parser.ts";
export { ShellLex } from "./shell-expand.ts";
export { extractBuilderFlags } from "./split-command.ts";
export { buildDependencyGraph, DispatchStates, newState, reachableStates } from "./stage-graph.ts";
