/** Shared types of the pure lowering step: builder version in, Dockerfile lines out. */
import type { BuilderVersion } from "@kiln-build/protocol";
import type { IgnoreSpec } from "../pattern-matcher.ts";

/** Local files a layer sends as its build context, before they are walked and tarred. */
export type ContextSource =
  /** One local file placed at `archivePath` (relative to the context root). */
  | { kind: "file"; localPath: string; archivePath: string }
  /** A local directory's contents placed under `archivePath` ("" for the context root). */
  | { kind: "dir"; localPath: string; archivePath: string; ignore: IgnoreSpec }
  /** The parts of a Docker build context that a Dockerfile asks for (include patterns). */
  | { kind: "docker-context"; contextDir: string; includePatterns: string[]; ignore: IgnoreSpec };

/** What lowering one layer yields for one builder version. */
export type LoweredLayer = {
  commands: string[];
  context: ContextSource[];
};

/** Lowers a layer for a builder version; may read small local files (pyproject.toml). */
export type Lowering = (builderVersion: BuilderVersion) => LoweredLayer;
