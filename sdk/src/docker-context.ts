/**
 * The build context of `fromDockerfile` and `dockerfileCommands`: which local paths the
 * Dockerfile asks for (BuildKit's rules, via `dockerfileContextPaths`) and which ignore
 * file applies. Modal scans only `COPY` lines; Kiln also sends ADD, heredoc-free JSON-form
 * and `RUN --mount=type=bind` sources.
 */
import { existsSync, readFileSync } from "node:fs";
import { dockerfileContextPaths } from "@kiln-build/protocol/dockerfile";
import { parseDockerignore, selectIgnoreFile } from "./dockerignore.ts";
import type { ContextSource } from "./lowering/types.ts";
import type { IgnoreSpec } from "./pattern-matcher.ts";

/** Where a Dockerfile's context comes from and how it is filtered. */
export type DockerContextOptions = {
  contextDir: string;
  /** The Dockerfile on disk, when there is one (its own `.dockerignore` may apply). */
  dockerfilePath?: string;
  /** An explicit ignore spec; `undefined` means "find the .dockerignore like Docker does". */
  ignore?: IgnoreSpec;
  buildArgs?: Record<string, string>;
  target?: string;
};

/** The context source a Dockerfile needs, or none when it copies nothing local. */
export function dockerContextSources(dockerfileText: string, options: DockerContextOptions): ContextSource[] {
  const includePatterns = dockerfileContextPaths(dockerfileText, {
    ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}),
    ...(options.target ? { target: options.target } : {}),
  });
  if (includePatterns.length === 0) return [];
  const ignore = options.ignore ?? autoDockerignore(options.contextDir, options.dockerfilePath);
  return [{ kind: "docker-context", contextDir: options.contextDir, includePatterns, ignore }];
}

/**
 * The `.dockerignore` that applies, by Modal's rule: `<Dockerfile>.dockerignore`, then
 * `.dockerignore` beside the Dockerfile, then `<contextDir>/.dockerignore`, each only if it
 * lies inside the context. Modal loses the first two for relative Dockerfile paths; Kiln
 * passes absolute paths, so they work. The file is read with Docker's rules (comments).
 */
export function autoDockerignore(contextDir: string, dockerfilePath?: string): string[] {
  const file = selectIgnoreFile({ contextDir, dockerfilePath, rule: "modal", exists: existsSync });
  return file === null ? [] : parseDockerignore(readFileSync(file, "utf8"));
}
