// Per-workspace storage and start-up recovery without buildah: a backend whose clean-up
// commands print container and image ids. Each workspace gets its own graph root with its
// container directories linked into the (RAM) secrets dir; start-up removes leftover job
// secret and scratch directories and cleans exactly the storages a job was still using; a
// storage whose container directories were lost while a job used it is reset.
import { existsSync, lstatSync, readlinkSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BuildBackend, StorageLocation } from "../src/backends/types.ts";
import { resolveConfig } from "../src/config.ts";
import { recoverFromCrash } from "../src/crash-recovery.ts";
import { createLogger } from "../src/logger.ts";
import { type RunnerPaths, runnerPaths } from "../src/state-dirs.ts";
import { WorkspaceStorages, workspaceLocation } from "../src/workspace-storage.ts";

let dir: string;
let paths: RunnerPaths;
let cleaned: StorageLocation[];

/** Records which storage each clean-up ran in; `rm --all` "removes" two containers, `rmi --prune` one image. */
function fakeBackend(location?: StorageLocation): BuildBackend {
  return {
    name: "buildah",
    cleanup: () => {
      if (location) cleaned.push(location);
      return { argv: ["sh", "-c", "echo aaaaaaaaaaaa1111; echo bbbbbbbbbbbb2222"] };
    },
    prune: () => ({ argv: ["sh", "-c", "echo cccccccccccc3333"] }),
    withStorage: (storage: StorageLocation) => fakeBackend(storage),
  } as unknown as BuildBackend;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-ws-storage-"));
  cleaned = [];
  paths = runnerPaths(
    resolveConfig({
      webhookSecrets: ["whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"],
      workDir: path.join(dir, "work"),
      cacheDir: path.join(dir, "cache"),
      secretsDir: path.join(dir, "ram"),
    }),
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("WorkspaceStorages", () => {
  it("gives each workspace its own storage, its container directories linked into the secrets dir", async () => {
    const storages = new WorkspaceStorages(
      paths,
      "vfs",
      fakeBackend(),
      createLogger("error", () => {}),
    );
    const a = await storages.open("ws_a");
    const b = await storages.open("ws/a");
    expect(await storages.open("ws_a")).toBe(a);
    expect(a.backend).not.toBe(b.backend);
    const where = workspaceLocation(paths, "ws_a");
    expect(where.graphRoot.startsWith(path.join(dir, "storage", "workspaces"))).toBe(true);
    expect(where.graphRoot).not.toBe(workspaceLocation(paths, "ws/a").graphRoot);
    const link = path.join(where.graphRoot, "vfs-containers");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(where.containers);
    expect(where.containers.startsWith(paths.secretsDir)).toBe(true);
    expect(where.runRoot.startsWith(paths.secretsDir)).toBe(true);
    const release = await a.claim("job-1:attempt-1");
    expect(await readdir(where.markers)).toHaveLength(1);
    await release();
    expect(await readdir(where.markers)).toEqual([]);
  });

  it("at start-up removes job files and cleans only the storages a job was using, and logs counts", async () => {
    const first = new WorkspaceStorages(
      paths,
      "vfs",
      fakeBackend(),
      createLogger("error", () => {}),
    );
    await (await first.open("ws_idle")).claim("done").then((release) => release());
    await (await first.open("ws_busy")).claim("crashed:1");
    await mkdir(path.join(paths.jobSecretsDir, "kiln-job-x-abc123", "auth-1"), { recursive: true });
    await writeFile(path.join(paths.jobSecretsDir, "kiln-job-x-abc123", "layer-0.env"), "TOKEN=secret\n");
    await writeFile(path.join(paths.jobSecretsDir, "kiln-job-x-abc123", "auth-1", "config.json"), "{}");
    await mkdir(path.join(paths.workDir, "kiln-job-x-def456", "layer-0"), { recursive: true });
    await mkdir(path.join(paths.workDir, "not-a-job"), { recursive: true });

    const lines: string[] = [];
    const storages = new WorkspaceStorages(
      paths,
      "vfs",
      fakeBackend(),
      createLogger("info", (line) => lines.push(line)),
    );
    const recovery = await recoverFromCrash(
      paths,
      storages,
      createLogger("info", (line) => lines.push(line)),
    );
    expect(recovery).toEqual({
      jobSecretDirs: 1,
      secretFiles: 1,
      authFiles: 1,
      workDirs: 1,
      containers: 2,
      stepImages: 1,
      storesReset: 0,
    });
    expect(cleaned.map((l) => l.root)).toEqual([workspaceLocation(paths, "ws_busy").graphRoot]);
    expect(await readdir(paths.jobSecretsDir)).toEqual([]);
    expect(await readdir(paths.workDir)).toEqual(["not-a-job"]);
    expect(await readdir(workspaceLocation(paths, "ws_busy").markers)).toEqual([]);
    const logged = JSON.parse(lines.find((l) => l.includes("left behind"))!);
    expect(logged).toMatchObject({ level: "warn", secretFiles: 1, containers: 2 });
    expect(lines.join("")).not.toContain("secret\\n");
  });

  it("resets a storage whose container directories were lost while a job used it", async () => {
    const first = new WorkspaceStorages(
      paths,
      "vfs",
      fakeBackend(),
      createLogger("error", () => {}),
    );
    await (await first.open("ws_rebooted")).claim("crashed:1");
    await (await first.open("ws_clean")).claim("done").then((release) => release());
    const rebooted = workspaceLocation(paths, "ws_rebooted");
    await writeFile(path.join(rebooted.graphRoot, "layer-data"), "x");
    // A reboot empties RAM.
    await rm(paths.secretsDir, { recursive: true, force: true });

    const storages = new WorkspaceStorages(
      paths,
      "vfs",
      fakeBackend(),
      createLogger("error", () => {}),
    );
    const recovery = await storages.recover();
    expect(recovery).toEqual({ containers: 0, stepImages: 0, storesReset: 1 });
    expect(existsSync(path.join(rebooted.graphRoot, "layer-data"))).toBe(false);
    expect(existsSync(path.join(paths.storageRoot, "trash"))).toBe(false);
    // The clean storage keeps its images; its links point at fresh RAM directories.
    const clean = workspaceLocation(paths, "ws_clean");
    expect(existsSync(clean.containers)).toBe(true);
    expect(readlinkSync(path.join(clean.graphRoot, "vfs-containers"))).toBe(clean.containers);
    expect(cleaned).toEqual([]);
  });
});
