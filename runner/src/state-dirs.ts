/**
 * Where the runner keeps its state, and which part must live in RAM.
 *
 * Everything that may hold a secret value goes under the secrets directory, which belongs on
 * a RAM file system (tmpfs): per-job secret environment files and registry auth files
 * (`<secrets>/jobs/`), and buildah's container directories, where it stages every RUN
 * step's secret mounts (`userdata/secrets`; workspace-storage.ts links them there). The
 * default is a directory of this runner's own under `/dev/shm`, named after its work
 * directory, so two runners on one machine never share (or clean up) each other's.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { statfs } from "node:fs/promises";
import path from "node:path";
import type { RunnerConfig } from "./config.ts";

/** The runner's directories, resolved. */
export type RunnerPaths = {
  workDir: string;
  cacheDir: string;
  /** RAM: whatever may hold a secret value. */
  secretsDir: string;
  /** One 0700 directory per running job, holding its secret and auth files. */
  jobSecretsDir: string;
  /** Image storage (disk), one buildah storage per workspace below it. */
  storageRoot: string;
  /** Parent of the workspaces' run roots when configured; else each lives beside its containers in RAM. */
  storageRunRoot: string | null;
};

/** How a job's scratch directory under the work dir starts (what start-up may remove). */
export const JOB_DIR_PREFIX = "kiln-job-";

const RAM_FILE_SYSTEMS = new Set([
  0x01021994, // tmpfs
  0x858458f6, // ramfs
]);

/** The directories `config` names, with the defaults filled in. */
export function runnerPaths(config: RunnerConfig): RunnerPaths {
  const workDir = path.resolve(config.workDir);
  const secretsDir = path.resolve(config.secretsDir ?? defaultSecretsDir(workDir));
  return {
    workDir,
    cacheDir: path.resolve(config.cacheDir),
    secretsDir,
    jobSecretsDir: path.join(secretsDir, "jobs"),
    storageRoot: path.resolve(config.storageRoot ?? path.join(path.dirname(workDir), "storage")),
    storageRunRoot: config.storageRunRoot ? path.resolve(config.storageRunRoot) : null,
  };
}

function defaultSecretsDir(workDir: string): string {
  if (!existsSync("/dev/shm")) return path.join(path.dirname(workDir), "secrets");
  return path.join("/dev/shm", `kiln-runner-${createHash("sha256").update(workDir).digest("hex").slice(0, 12)}`);
}

/** Whether `dir` is on a RAM file system (tmpfs, ramfs); null when that cannot be told. */
export async function isRamBacked(dir: string): Promise<boolean | null> {
  try {
    return RAM_FILE_SYSTEMS.has(Number((await statfs(dir)).type));
  } catch {
    return null;
  }
}

/** A file name for `id`: its safe characters, then a hash, so distinct ids never share one. */
export function safeKey(id: string): string {
  const readable = id.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 48);
  return `${readable}-${createHash("sha256").update(id).digest("hex").slice(0, 12)}`;
}
