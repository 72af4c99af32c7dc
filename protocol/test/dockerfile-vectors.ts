/**
 * Loads BuildKit's Dockerfile test vectors (copied verbatim into test/vectors/dockerfile_parse).
 */
import { readdirSync, readFileSync } from "node:fs";

const ROOT = new URL("../../test/vectors/dockerfile_parse/", import.meta.url);

/** Reads one vector file, e.g. `instruction_level/directives.json`. */
export function loadVector<T = unknown>(relative: string): T {
  return JSON.parse(readFileSync(new URL(relative, ROOT), "utf8")) as T;
}

/** Names of the top-level vector files (`*.json` directly in dockerfile_parse/). */
export function topLevelVectorFiles(): string[] {
  return readdirSync(ROOT)
    .filter((f) => f.endsWith(".json"))
    .sort();
}
