/**
 * Which registry images a layer's build pulls, read the way the Dockerfile frontend reads
 * them: ARGs declared before the first FROM are expanded in FROM (their defaults, overridden
 * by the layer's build args, `${VAR:-default}` and the other shell forms included), FROMs
 * naming an earlier stage or `scratch` pull nothing, and images named by `COPY --from` or
 * `RUN --mount=from=` are pulled too. Only stages the last stage needs count, as buildah
 * (`--skip-unused-stages`, the default) and BuildKit build only those. The runner decides
 * TLS verification and finds base-image logins from this. No I/O: the SDK's port of
 * BuildKit's parser, lexer and stage graph does the reading.
 */

import type { ArgCommand } from "@kiln-build/protocol/dockerfile";
import {
  buildDependencyGraph,
  DispatchStates,
  EnvList,
  newState,
  parseDockerfile,
  parseStages,
  reachableStates,
  ShellLex,
} from "@kiln-build/protocol/dockerfile";

/** Options of {@link pulledImages}. */
export type PulledImagesOptions = {
  /** The layer's build args: they override the defaults of the ARGs the Dockerfile declares. */
  buildArgs?: Record<string, string>;
  /** What a leading `FROM base` stands for (the parent layer's image); null or absent for root layers. */
  parentReference?: string | null;
};

/** The registry images one layer's build pulls. */
export type PulledImages = {
  /** The image of the first FROM, expanded; null when it is `scratch` or there is none. A root layer's `baseAuth` logs in to its registry. */
  base: string | null;
  /** Every image the build needs (FROM, `COPY --from`, `RUN --mount=from=`), expanded, each once, in Dockerfile order. */
  images: string[];
};

/** The images `commands` (a layer's Dockerfile lines) pull when built with `options.buildArgs`. */
export function pulledImages(commands: readonly string[], options: PulledImagesOptions = {}): PulledImages {
  const lines = [...commands];
  if (lines[0]?.trim() === "FROM base" && options.parentReference) lines[0] = `FROM ${options.parentReference}`;
  try {
    return readPulls(lines.join("\n"), options.buildArgs ?? {});
  } catch {
    // Lines the frontend would reject: the build reports why. Until then, go by the literal first FROM.
    const literal = lines.map((line) => /^\s*FROM\s+(?:--\S+\s+)*(\S+)/i.exec(line)?.[1]).find((ref) => ref !== undefined) ?? null;
    return literal === null || isScratch(literal) ? { base: null, images: [] } : { base: literal, images: [literal] };
  }
}

/** How a build's pulls treat TLS: buildah and BuildKit take one `--tls-verify` for all of them. */
export type PullTls = {
  /** Verify TLS on pulls (false only when every registry pulled from is insecure). */
  verify: boolean;
  /** Insecure registries that are nevertheless reached with TLS verification (mixed with secure ones). */
  verifiedInsecure: string[];
};

/**
 * Whether to verify TLS when pulling from `hosts` (see `registryHostOf`), given the
 * registries known to be insecure.
 * Verification is turned off only when every host pulled from is insecure: with a mix,
 * turning it off would expose pulls from the secure registries (Docker Hub, say) to
 * interception, so it stays on, and the insecure ones must then serve valid TLS.
 */
export function pullTls(hosts: readonly string[], insecureHosts: readonly string[]): PullTls {
  const unique = [...new Set(hosts)];
  const insecure = unique.filter((host) => insecureHosts.includes(host));
  if (unique.length > 0 && insecure.length === unique.length) return { verify: false, verifiedInsecure: [] };
  return { verify: true, verifiedInsecure: insecure };
}

function readPulls(text: string, buildArgs: Record<string, string>): PulledImages {
  const ast = parseDockerfile(text);
  const { metaArgs, stages } = parseStages(ast);
  if (stages.length === 0) return { base: null, images: [] };
  const lex = new ShellLex({ escapeToken: ast.escapeToken });
  const globalArgs = globalArgsOf(metaArgs, buildArgs, lex);
  const all = new DispatchStates();
  stages.forEach((stage, i) => {
    const baseName = lex.processWord(stage.baseName, globalArgs);
    all.add(newState({ stage, baseName, name: stage.name, stageName: stage.name || `stage-${i}`, location: stage.instruction }));
  });
  const first = all.states[0]!.baseName;
  // Adds the images `COPY --from` and `RUN --mount=from=` name as states of their own.
  buildDependencyGraph(all, lex);
  const needed = reachableStates(all.states[stages.length - 1]!);
  const images = all.states.filter((s) => needed.has(s) && s.base === undefined && !isScratch(s.baseName)).map((s) => s.baseName);
  return { base: isScratch(first) ? null : first, images: [...new Set(images)] };
}

/**
 * The values FROM lines see: the platform ARGs every build predefines, then the ARGs
 * declared before the first FROM, each its build arg if given, else its default expanded
 * with the values before it (BuildKit's and buildah's rule).
 */
function globalArgsOf(metaArgs: readonly ArgCommand[], buildArgs: Record<string, string>, lex: ShellLex): EnvList {
  const args = platformArgs(buildArgs);
  for (const cmd of metaArgs) {
    for (const { key, value } of cmd.args) {
      const resolved = Object.hasOwn(buildArgs, key) ? buildArgs[key] : value === undefined ? undefined : lex.processWord(value, args);
      if (resolved !== undefined) args.set(key, resolved);
    }
  }
  return args;
}

/** `TARGETARCH` & co. for this machine (the runner builds for its own platform). */
function platformArgs(buildArgs: Record<string, string>): EnvList {
  const arch =
    ({ x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" } as Record<string, string>)[
      process.arch
    ] ?? process.arch;
  const platform = `linux/${arch}`;
  const defaults: [string, string][] = [];
  for (const side of ["BUILD", "TARGET"]) {
    defaults.push([`${side}PLATFORM`, platform], [`${side}OS`, "linux"], [`${side}ARCH`, arch], [`${side}VARIANT`, ""]);
  }
  return new EnvList(defaults.map(([k, v]) => [k, Object.hasOwn(buildArgs, k) ? buildArgs[k]! : v]));
}

function isScratch(name: string): boolean {
  return name.toLowerCase() === "scratch";
}
