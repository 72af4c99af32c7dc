/** Running buildah from the benchmarks' baselines (`buildah bud` + `push` of the equivalent Dockerfile). */
import { runProcess } from "../runner/src/process.ts";

const VERBS = new Set(["bud", "push", "rmi", "pull", "from", "commit", "manifest"]);

/** Runs a buildah command line, throwing on a non-zero exit. The error names the verb only: argv may hold credentials. */
export async function mustRunBuildah(argv: string[]): Promise<void> {
  const result = await runProcess({ argv }, { killGraceMs: 5_000 });
  if (result.exitCode !== 0)
    throw new Error(`buildah ${argv.find((a) => VERBS.has(a)) ?? "command"} failed with ${result.exitCode ?? result.signal}`);
}
