/**
 * A job's footprint on the machine: its scratch directory (disk), its secret directory (in
 * the RAM-backed secrets dir, see state-dirs.ts), its claim on its workspace's storage, and
 * the images it built there. Each is recorded the moment it exists, so the clean-up after the
 * job removes exactly what was made, whatever happened; what a crash leaves, the next
 * start-up removes (crash-recovery.ts).
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import type { Job } from "@kiln-build/protocol";
import type { RunnerConfig } from "./config.ts";
import type { Logger } from "./logger.ts";
import { runProcess } from "./process.ts";
import { JOB_DIR_PREFIX } from "./state-dirs.ts";
import type { WorkspaceStorage, WorkspaceStorages } from "./workspace-storage.ts";

/** What one job has made so far. */
export type JobFiles = {
  workDir: string | null;
  secretDir: string | null;
  storage: WorkspaceStorage | null;
  /** Ends the job's claim on its workspace's storage. */
  release: (() => Promise<void>) | null;
  /** Targets built into local storage, removed after the job. */
  built: string[];
};

/** Nothing made yet. */
export function noJobFiles(): JobFiles {
  return { workDir: null, secretDir: null, storage: null, release: null, built: [] };
}

/** Creates the job's directories and opens (and claims) its workspace's storage, recording each in `files`. */
export async function openJobFiles(
  storages: WorkspaceStorages,
  job: Job,
  files: JobFiles,
): Promise<{ workDir: string; secretDir: string; storage: WorkspaceStorage }> {
  const { paths } = storages;
  const name = `${JOB_DIR_PREFIX}${job.jobId.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64)}-`;
  await mkdir(paths.workDir, { recursive: true, mode: 0o700 });
  const workDir = await mkdtemp(path.join(paths.workDir, name));
  files.workDir = workDir;
  await mkdir(paths.jobSecretsDir, { recursive: true, mode: 0o700 });
  const secretDir = await mkdtemp(path.join(paths.jobSecretsDir, name));
  files.secretDir = secretDir;
  const storage = await storages.open(job.workspaceId);
  files.storage = storage;
  files.release = await storage.claim(`${job.jobId}:${job.attemptId}`);
  return { workDir, secretDir, storage };
}

/** Removes the job's directories and (unless `keepImages`) the images it built, then ends its claim on the storage. */
export async function removeJobFiles(config: RunnerConfig, files: JobFiles, logger: Logger): Promise<void> {
  for (const dir of [files.secretDir, files.workDir]) {
    if (dir)
      await rm(dir, { recursive: true, force: true }).catch((error: unknown) =>
        logger.error("could not remove a job directory", { dir, error: String(error) }),
      );
  }
  if (!config.keepImages && files.storage) {
    for (const target of files.built) {
      const command = files.storage.backend.remove(target);
      if (command) await runProcess(command, { killGraceMs: 2_000 }).catch(() => undefined);
    }
  }
  await files.release?.();
}
