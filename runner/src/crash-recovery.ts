/**
 * What a runner does at start-up, before it takes a job, about the jobs a previous run left
 * unfinished (SIGKILL, OOM, a power cut): their secret and registry auth files, their scratch
 * directories, and the working containers and dangling step images in their workspaces'
 * storages. It logs what it removed, in counts by kind, never names or contents.
 */
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "./logger.ts";
import { JOB_DIR_PREFIX, type RunnerPaths } from "./state-dirs.ts";
import type { StorageRecovery, WorkspaceStorages } from "./workspace-storage.ts";

/** What start-up removed. */
export type Recovery = StorageRecovery & { jobSecretDirs: number; secretFiles: number; authFiles: number; workDirs: number };

/** Removes what unfinished jobs left; logs and returns the counts. */
export async function recoverFromCrash(paths: RunnerPaths, storages: WorkspaceStorages, logger: Logger): Promise<Recovery> {
  const secrets = await removeJobSecrets(paths);
  const workDirs = await removeWorkDirs(paths);
  const storage = await storages.recover();
  const recovery: Recovery = { ...secrets, workDirs, ...storage };
  if (Object.values(recovery).some((n) => n > 0))
    logger.warn("removed what unfinished jobs of an earlier run left behind", { ...recovery });
  return recovery;
}

/** Every job's secret directory (`<secrets>/jobs/*`). */
async function removeJobSecrets(paths: RunnerPaths): Promise<{ jobSecretDirs: number; secretFiles: number; authFiles: number }> {
  const found = { jobSecretDirs: 0, secretFiles: 0, authFiles: 0 };
  for (const dir of (await entries(paths.jobSecretsDir)).map((name) => path.join(paths.jobSecretsDir, name))) {
    found.jobSecretDirs++;
    for (const file of await readdir(dir, { recursive: true }).catch(() => [] as string[])) {
      if (file.endsWith(".env")) found.secretFiles++;
      else if (path.basename(file) === "config.json") found.authFiles++;
    }
    await rm(dir, { recursive: true, force: true });
  }
  return found;
}

/** Every job's scratch directory (`<work>/kiln-job-*`). */
async function removeWorkDirs(paths: RunnerPaths): Promise<number> {
  const dirs = (await entries(paths.workDir)).filter((name) => name.startsWith(JOB_DIR_PREFIX));
  for (const name of dirs) await rm(path.join(paths.workDir, name), { recursive: true, force: true });
  return dirs.length;
}

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}
