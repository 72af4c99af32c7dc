/**
 * What a job token may do in the built-in registry, least privilege (docs/registry.md): push
 * only to the job's own layer repository and only its layers' tags (or by digest), pull only
 * that repository and the images its layers' Dockerfiles name on this registry (the chain's
 * parent, `FROM`, `COPY --from`, `RUN --mount=from=`, read with the runner's front-end). The
 * scope is derived from the composed job and stored with the token's hash (`job_tokens.scope`).
 *
 * @example
 * const job = composeJob(input);
 * await storeJobTokenScope(env, tokenHash, jobTokenScope(job));
 */
import type { Job } from "@kiln-build/protocol";
import {
  buildDependencyGraph,
  DispatchStates,
  EnvList,
  newState,
  parseDockerfile,
  parseStages,
  ShellLex,
} from "@kiln-build/protocol/dockerfile";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type JobTokenScope, jobTokens } from "../db/schema/job-tokens.ts";
import { isRepositoryName, isTag } from "../registry/reference.ts";

export type { JobTokenScope } from "../db/schema/job-tokens.ts";

// Runners build for their own platform; FROM lines may expand TARGETARCH & co., so both count.
const ARCHES = ["amd64", "arm64"] as const;

/** The repository `reference` names on registry `host` (`<host>/<repo>[:tag][@digest]`), or null for another registry. */
export function repositoryOn(host: string, reference: string): { repository: string; tag: string | null } | null {
  const slash = reference.indexOf("/");
  if (slash < 0 || reference.slice(0, slash).toLowerCase() !== host.toLowerCase()) return null;
  let rest = reference.slice(slash + 1);
  const at = rest.indexOf("@");
  if (at >= 0) rest = rest.slice(0, at);
  const colon = rest.lastIndexOf(":");
  const tag = colon > rest.lastIndexOf("/") && at < 0 ? rest.slice(colon + 1) : null;
  if (colon > rest.lastIndexOf("/")) rest = rest.slice(0, colon);
  return isRepositoryName(rest) ? { repository: rest, tag } : null;
}

/** The registry scope of `job`'s token: its layers' targets to push, its chain's images to pull. */
export function jobTokenScope(job: Job): JobTokenScope {
  const host = job.registry.host;
  const push: Record<string, string[]> = {};
  for (const layer of job.layers) {
    const target = repositoryOn(host, layer.target);
    if (!target?.tag || !isTag(target.tag)) continue;
    push[target.repository] = [...new Set([...(push[target.repository] ?? []), target.tag])].sort();
  }
  const pull = new Set<string>();
  job.layers.forEach((layer, i) => {
    const parent = i === 0 ? job.parentReference : job.layers[i - 1]!.target;
    for (const image of pulledImages(layer.dockerfileCommands, layer.buildArgs, parent)) {
      const repo = repositoryOn(host, image)?.repository;
      if (repo && !(repo in push)) pull.add(repo);
    }
  });
  // A push-only job reads the cached image it copies to external registries.
  const source = job.push?.source ? repositoryOn(host, job.push.source)?.repository : undefined;
  if (source && !(source in push)) pull.add(source);
  return { push, pull: [...pull].sort() };
}

/** Stores the scope of a minted job token (before the token leaves the orchestrator). */
export async function storeJobTokenScope(env: Env, tokenHash: string, scope: JobTokenScope): Promise<void> {
  await drizzle(env.DB).update(jobTokens).set({ scope }).where(eq(jobTokens.hash, tokenHash)).run();
}

/**
 * Every image a layer's Dockerfile can pull, a superset of what the runner pulls
 * (runner/src/base-images.ts): every stage's and `--from` image's expanded name, for each
 * platform, plus each literal FROM (what the runner falls back to on lines it cannot parse).
 */
function pulledImages(commands: readonly string[], buildArgs: Record<string, string>, parent: string | null): string[] {
  const lines = [...commands];
  if (lines[0]?.trim() === "FROM base" && parent) lines[0] = `FROM ${parent}`;
  const found = new Set<string>();
  for (const line of lines) {
    const literal = /^\s*FROM\s+(?:--\S+\s+)*(\S+)/i.exec(line)?.[1];
    if (literal) found.add(literal);
  }
  for (const arch of ARCHES) {
    try {
      for (const image of expandedImages(lines.join("\n"), buildArgs, arch)) found.add(image);
    } catch {
      // Lines the front-end rejects fail the build on the runner too; the literal FROMs stand.
    }
  }
  return [...found];
}

function expandedImages(text: string, buildArgs: Record<string, string>, arch: string): string[] {
  const ast = parseDockerfile(text);
  const { metaArgs, stages } = parseStages(ast);
  const lex = new ShellLex({ escapeToken: ast.escapeToken });
  const args = new EnvList(
    ["BUILD", "TARGET"].flatMap((side): [string, string][] =>
      [
        [`${side}PLATFORM`, `linux/${arch}`],
        [`${side}OS`, "linux"],
        [`${side}ARCH`, arch],
        [`${side}VARIANT`, ""],
      ].map(([k, v]) => [k!, Object.hasOwn(buildArgs, k!) ? buildArgs[k!]! : v!]),
    ),
  );
  for (const cmd of metaArgs) {
    for (const { key, value } of cmd.args) {
      const resolved = Object.hasOwn(buildArgs, key) ? buildArgs[key] : value === undefined ? undefined : lex.processWord(value, args);
      if (resolved !== undefined) args.set(key, resolved);
    }
  }
  const all = new DispatchStates();
  stages.forEach((stage, i) => {
    const baseName = lex.processWord(stage.baseName, args);
    all.add(newState({ stage, baseName, name: stage.name, stageName: stage.name || `stage-${i}`, location: stage.instruction }));
  });
  buildDependencyGraph(all, lex);
  return all.states.filter((s) => s.base === undefined).map((s) => s.baseName);
}
