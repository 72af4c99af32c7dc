/**
 * The build backend interface: pure functions from a build request to the exact command
 * lines a tool needs, plus how to read the pushed digest and recognise a failed step.
 * Keeping them pure lets tests check every backend's invocation without the tool.
 */
import type { GpuDevice } from "../gpu.ts";
import type { Command } from "../process.ts";

/** When to pull an image named in FROM. */
export type PullPolicy = "missing" | "always" | "newer" | "never";

/** A secret file RUN steps mount by id (`--mount=type=secret,id=...`). */
export type SecretFile = { id: string; path: string };

/** One workspace's own image storage (buildah: `--root` and `--runroot`). */
export type StorageLocation = {
  root: string;
  runRoot: string;
  /** Temporary directory of builds (`TMPDIR`): buildah keeps `RUN --mount=type=cache` contents under it, so it is per workspace. */
  tmpDir?: string;
};

/** A line of a chain build's output that moves it on: a step starting, or the image a step committed. */
export type ChainProgress = { step: number; totalSteps: number } | { image: string };

/** Everything a backend needs to build and push one layer image (or a chain of them). */
export type BuildRequest = {
  contextDir: string;
  /** Path of the rendered Dockerfile (outside the context). */
  dockerfile: string;
  /** Reference the image is tagged and pushed as. */
  target: string;
  buildArgs: Record<string, string>;
  /** The Dockerfile stage to build (`--target`); absent, the last stage. */
  stage?: string | undefined;
  /** The platform to build for (`--platform`, e.g. linux/arm64); absent, the host's. */
  platform?: string | undefined;
  /** Secret environment files: the layer's (id `kiln-env`), or one per layer of a chain. */
  secrets: readonly SecretFile[];
  /** Commit an image after every step (a chain: each layer's image is a step image). */
  stepImages: boolean;
  /** GPUs reserved for this layer's RUN steps. */
  gpus: readonly GpuDevice[];
  /** Registry auth file (`config.json`: containers/image and Docker both read it). */
  authFile: string;
  /** Verify TLS when pulling FROM images (false only for an insecure registry). */
  pullTlsVerify: boolean;
  /** The target registry speaks plain HTTP / has no valid certificate. */
  targetInsecure: boolean;
  pull: PullPolicy;
  /** File the tool writes the pushed digest (or build metadata) to. */
  metadataFile: string;
};

/** One way of building images (buildah, docker buildx, buildctl). */
export interface BuildBackend {
  /** Name used in config and capabilities. */
  readonly name: "buildah" | "docker-buildx" | "buildctl";
  /** Dockerfile RUN flags that expose `gpus` (BuildKit's `--device=`); [] when the CLI handles it. */
  runFlags(gpus: readonly GpuDevice[]): string[];
  /** The build command (for BuildKit backends it also pushes). */
  build(request: BuildRequest): Command;
  /** The push command, or null when `build` already pushed. */
  push(request: BuildRequest): Command | null;
  /** Reads the pushed manifest digest after build/push. */
  digest(request: BuildRequest): Promise<string>;
  /** Removes the local image after the job, or null when nothing is kept locally. */
  remove(target: string): Command | null;
  /** Removes what stopped builds left behind (working containers), or null when nothing can be left. */
  cleanup(): Command | null;
  /** The exit code of a failed RUN step if the output's last lines report one. */
  stepExitCode(tail: readonly string[]): number | null;
  /** Builds chains of layers in one session (see chain-plan.ts). */
  readonly chains: boolean;
  /** Reads one stdout line of a chain build; null for anything else. */
  chainProgress(line: string): ChainProgress | null;
  /** Names a local step image `target`, or null when the backend keeps no local images. */
  tag(image: string, target: string): Command | null;
  /** Prints a local image's config blob, byte for byte (its sha256 is the image id), or null. */
  imageConfig(image: string): Command | null;
  /** A command that succeeds when the tool is installed (for `kiln-runner doctor`). */
  version(): Command;
  /**
   * This backend working in `storage` instead of its default one; absent when the backend
   * keeps no local storage the runner can choose (BuildKit's cache belongs to its daemon).
   */
  withStorage?(storage: StorageLocation): BuildBackend;
  /** Removes dangling images (a stopped chain's step images), printing one id per removed image. */
  prune?(): Command;
}

/** Finds the last match of `pattern` (first group: an exit code) in `tail`. */
export function lastExitCode(tail: readonly string[], pattern: RegExp): number | null {
  for (let i = tail.length - 1; i >= 0; i--) {
    const match = pattern.exec(tail[i]!);
    if (match) return Number(match[1]);
  }
  return null;
}
