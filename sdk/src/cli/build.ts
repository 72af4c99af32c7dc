/** `kiln build FILE`: loads the module and builds the Image it exports. */
import { spawnSync } from "node:child_process";
import type { KilnClient } from "../client.ts";
import { Image } from "../image.ts";
import { loadImageModule } from "./load-module.ts";
import { CliError, EXIT, emit } from "./output.ts";

/** Options of `kiln build`. */
export type BuildCommandOptions = {
  export?: string;
  tag?: string;
  forceBuild?: boolean;
  ignoreCache?: boolean;
  logs?: boolean;
  /** `--timeout SECONDS`: the time limit of each build attempt. */
  timeout?: number;
  /** `--push REF` (repeatable), `--push-secret NAME`, `--label k=v`, `--source`, `--revision` (decision 0019). */
  push?: string[];
  pushSecret?: string;
  label?: string[];
  source?: string;
  revision?: string;
  /** `--platform linux/amd64,linux/arm64`: the platforms to build (decision 0023). */
  platform?: string;
};

/** How the output should look: `--json`, `--quiet`, `--no-color`. */
export type OutputMode = { json: boolean; quiet?: boolean | undefined; color?: boolean | undefined };

/** Imports `file`, picks the exported Image and builds it, printing the result. */
export async function buildCommand(client: KilnClient, mode: OutputMode, file: string, opts: BuildCommandOptions): Promise<void> {
  const json = mode.json;
  const module = await loadImageModule(file);
  const image = pickImage(module, file, opts.export);
  const interrupts = cancelOnInterrupt();
  const built = await image
    .build({
      client,
      signal: interrupts.signal,
      ...(opts.timeout === undefined ? {} : { timeoutSeconds: opts.timeout }),
      ...(opts.tag ? { tag: opts.tag } : {}),
      ...(opts.platform ? { platforms: opts.platform.split(",").map((p) => p.trim()) } : {}),
      ...pushOptions(opts),
      forceBuild: !!opts.forceBuild,
      ignoreCache: !!opts.ignoreCache,
      // --quiet and --json print the result only: no log, no progress.
      logs: opts.logs !== false && !json && !mode.quiet,
      // Commander defaults `color` to true; only an explicit --no-color turns escape codes off here
      // (NO_COLOR and FORCE_COLOR are read by the SDK itself).
      ...(mode.color === false ? { color: false } : {}),
    })
    .finally(interrupts.stop);
  const result = {
    imageId: built.imageId,
    reference: built.reference,
    digest: built.digest,
    uploadedBytes: built.uploadedBytes,
    ...(built.pushes ? { pushes: built.pushes } : {}),
    ...(built.platforms ? { platforms: built.platforms } : {}),
  };
  const pushed = (built.pushes ?? []).map((p) => `\n  pushed    ${p.reference}@${p.digest}`).join("");
  const platforms = (built.platforms ?? []).map((p) => `\n  ${p.platform.padEnd(12)}${p.imageId} ${p.digest}`).join("");
  emit(json, result, () => `Built ${built.imageId}\n  reference ${built.reference}\n  digest    ${built.digest}${platforms}${pushed}`);
}

/** The push options of `kiln build`: `--label k=v` split, the revision from git when pushing from a git checkout. */
function pushOptions(opts: BuildCommandOptions): Record<string, unknown> {
  const labels: Record<string, string> = {};
  for (const pair of opts.label ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0)
      throw new CliError(`--label ${JSON.stringify(pair)} is not KEY=VALUE.`, {
        fix: "Write --label org.example.team=builds",
        exitCode: EXIT.usage,
      });
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  // Without --push the others are passed on as given, for build() to refuse (never dropped silently).
  const revision = opts.revision ?? (opts.push?.length ? gitRevision() : undefined);
  return {
    ...(opts.push?.length ? { push: opts.push } : {}),
    ...(opts.pushSecret ? { pushSecret: opts.pushSecret } : {}),
    ...(Object.keys(labels).length ? { labels } : {}),
    ...(opts.source ? { source: opts.source } : {}),
    ...(revision ? { revision } : {}),
  };
}

// The checkout's commit, when the command runs in a git repository with git installed.
function gitRevision(): string | undefined {
  const git = spawnSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const rev = git.status === 0 ? git.stdout.trim() : "";
  return /^[0-9a-f]{40,64}$/.test(rev) ? rev : undefined;
}

/**
 * Ctrl-C during a build: the first asks the server to cancel it and waits for the build to
 * end as cancelled; a second exits at once, leaving the build to the server.
 */
export function cancelOnInterrupt(): { signal: AbortSignal; stop: () => void } {
  const controller = new AbortController();
  const onInterrupt = () => {
    if (!controller.signal.aborted) {
      process.stderr.write("\nCancelling the build on the server; press Ctrl-C again to exit without waiting.\n");
      controller.abort();
      return;
    }
    process.stderr.write(
      "\nExiting without waiting; the build may keep running on the server until its cancel takes effect (kiln images ls).\n",
    );
    process.exit(130);
  };
  process.on("SIGINT", onInterrupt);
  return { signal: controller.signal, stop: () => process.off("SIGINT", onInterrupt) };
}

/** The Image export to build: `--export NAME`, else `default`, else the only Image export. */
export function pickImage(module: Record<string, unknown>, file: string, name?: string): Image {
  if (name) {
    const value = module[name];
    if (value instanceof Image) return value;
    throw new CliError(`${file} has no Image export named '${name}'.`, {
      fix: `Export it: export const ${name} = Image.debianSlim()...`,
      exitCode: EXIT.usage,
    });
  }
  if (module.default instanceof Image) return module.default;
  const images = Object.entries(module).filter(([, v]) => v instanceof Image);
  if (images.length === 1) return images[0]![1] as Image;
  const names = images.map(([k]) => k).join(", ");
  throw new CliError(images.length ? `${file} exports several Images (${names}).` : `${file} exports no Image.`, {
    fix: images.length ? "Choose one with --export NAME." : "Export one: export default Image.debianSlim()...",
    exitCode: EXIT.usage,
  });
}
