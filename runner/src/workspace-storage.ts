/**
 * One image storage per workspace. A job builds only in the storage of its own workspace
 * (the signed job's `workspaceId`), so an image one workspace pulled or built (a private base
 * image, a parent layer, a chain's step images, a half-built container) is never there for
 * another workspace's build to reuse without pulling it, which the registry checks against
 * that job's own credentials. Storages are buildah's own, laid out as:
 *
 *   <storage root>/workspaces/<key>/graph           graph root: images and layers (disk)
 *   <storage root>/workspaces/<key>/tmp             builds' TMPDIR: buildah keeps the contents of
 *                                                   `RUN --mount=type=cache` mounts (`volumes`)
 *                                                   in `tmp/buildah-cache/<id>`, per workspace
 *   <storage root>/workspaces/<key>/jobs/<run>      a marker per job using it; one a crash left
 *                                                   makes the next start clean the storage
 *   <secrets dir>/workspaces/<key>/containers       container directories (RAM), linked from
 *                                                   `graph/<driver>-containers`: buildah writes
 *                                                   every RUN step's secret mounts there
 *   <secrets dir>/workspaces/<key>/run              run root (or `<storage run root>/<key>`)
 *
 * Backends without a storage the runner chooses (BuildKit) share one, and one janitor.
 */
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BuildBackend } from "./backends/types.ts";
import type { Logger } from "./logger.ts";
import { type Command, captureProcess } from "./process.ts";
import { type RunnerPaths, safeKey } from "./state-dirs.ts";
import { StorageJanitor } from "./storage-janitor.ts";

/** Where one workspace's storage lives. */
export type WorkspaceLocation = { graphRoot: string; runRoot: string; containers: string; markers: string; tmpDir: string };

/** A workspace's storage as a job uses it. */
export type WorkspaceStorage = {
  backend: BuildBackend;
  janitor: StorageJanitor;
  /** Marks the storage in use by one job (`runId`) until the returned function runs. */
  claim(runId: string): Promise<() => Promise<void>>;
};

/** What start-up cleaned in the storages. */
export type StorageRecovery = { containers: number; stepImages: number; storesReset: number };

/** The directories of workspace `workspaceId`'s storage. */
export function workspaceLocation(paths: RunnerPaths, workspaceId: string): WorkspaceLocation {
  return locationOf(paths, safeKey(workspaceId));
}

function locationOf(paths: RunnerPaths, key: string): WorkspaceLocation {
  const own = path.join(paths.storageRoot, "workspaces", key);
  const ram = path.join(paths.secretsDir, "workspaces", key);
  return {
    graphRoot: path.join(own, "graph"),
    markers: path.join(own, "jobs"),
    tmpDir: path.join(own, "tmp"),
    containers: path.join(ram, "containers"),
    runRoot: paths.storageRunRoot ? path.join(paths.storageRunRoot, key) : path.join(ram, "run"),
  };
}

/** Opens (and prepares) workspaces' storages; cleans what crashed jobs left in them. */
export class WorkspaceStorages {
  readonly paths: RunnerPaths;
  readonly #driver: string;
  readonly #backend: BuildBackend;
  readonly #logger: Logger;
  readonly #opened = new Map<string, Promise<WorkspaceStorage>>();
  readonly #shared: WorkspaceStorage;

  constructor(paths: RunnerPaths, storageDriver: string, backend: BuildBackend, logger: Logger) {
    this.paths = paths;
    this.#driver = storageDriver;
    this.#backend = backend;
    this.#logger = logger;
    this.#shared = { backend, janitor: new StorageJanitor(backend, logger), claim: async () => async () => {} };
  }

  /** Whether every workspace gets a storage of its own (false: the backend's one cache is shared). */
  get perWorkspace(): boolean {
    return typeof this.#backend.withStorage === "function";
  }

  /** The storage of `workspaceId`, created on first use. */
  open(workspaceId: string): Promise<WorkspaceStorage> {
    if (!this.perWorkspace) return Promise.resolve(this.#shared);
    const key = safeKey(workspaceId);
    let opened = this.#opened.get(key);
    if (!opened) {
      opened = this.#prepare(locationOf(this.paths, key)).then(() => this.#storage(locationOf(this.paths, key)));
      opened.catch(() => this.#opened.delete(key));
      this.#opened.set(key, opened);
    }
    return opened;
  }

  /**
   * At start-up, before any job: removes the working containers and dangling step images of
   * every storage a job was still using when the runner stopped (its marker is left, or the
   * storage lists containers). A storage whose container directories were lost (a reboot
   * emptied RAM) while a job used it is reset: its half-built layers can no longer be found.
   */
  async recover(): Promise<StorageRecovery> {
    const found: StorageRecovery = { containers: 0, stepImages: 0, storesReset: 0 };
    if (!this.perWorkspace) return found;
    const base = path.join(this.paths.storageRoot, "workspaces");
    await this.#emptyTrash();
    for (const entry of await readdir(base, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue;
      const location = locationOf(this.paths, entry.name);
      const markers = await readdir(location.markers).catch(() => []);
      const kept = await this.#prepare(location);
      if (!kept && markers.length > 0) {
        await this.#reset(location);
        found.storesReset++;
        continue;
      }
      if (markers.length === 0 && !(await listsContainers(location.containers))) continue;
      const { backend } = this.#storage(location);
      found.containers += await this.#count(backend.cleanup(), "working containers", entry.name);
      found.stepImages += await this.#count(backend.prune?.() ?? null, "dangling images", entry.name);
      await Promise.all(markers.map((marker) => rm(path.join(location.markers, marker), { force: true })));
    }
    return found;
  }

  #storage(location: WorkspaceLocation): WorkspaceStorage {
    const backend = this.#backend.withStorage!({ root: location.graphRoot, runRoot: location.runRoot, tmpDir: location.tmpDir });
    return {
      backend,
      janitor: new StorageJanitor(backend, this.#logger),
      async claim(runId) {
        const marker = path.join(location.markers, safeKey(runId));
        await writeFile(marker, "");
        return () => rm(marker, { force: true });
      },
    };
  }

  /**
   * Creates the storage's directories and links its container directories into RAM. False
   * when the storage existed but its container directories did not (they were lost).
   */
  async #prepare(location: WorkspaceLocation): Promise<boolean> {
    const existed = await exists(location.graphRoot);
    const kept = !existed || (await exists(location.containers));
    for (const dir of [location.graphRoot, location.markers, location.containers, location.tmpDir])
      await mkdir(dir, { recursive: true, mode: 0o700 });
    const link = path.join(location.graphRoot, `${this.#driver}-containers`);
    const current = await lstat(link).catch(() => null);
    if (current && !current.isSymbolicLink())
      throw new Error(`${link} is a directory on disk, where buildah would stage secrets; remove ${path.dirname(location.graphRoot)}`);
    if (current && (await readlink(link)) === location.containers) return kept;
    if (current) await unlink(link);
    await symlink(location.containers, link);
    return kept && !current;
  }

  /** Moves a storage aside (its directory, then its RAM part) and deletes it; the next job starts it afresh. */
  async #reset(location: WorkspaceLocation): Promise<void> {
    const trash = path.join(this.paths.storageRoot, "trash");
    await mkdir(trash, { recursive: true, mode: 0o700 });
    await rename(path.dirname(location.graphRoot), path.join(trash, `${path.basename(path.dirname(location.graphRoot))}-${Date.now()}`));
    await rm(path.dirname(location.containers), { recursive: true, force: true });
    await this.#emptyTrash();
  }

  async #emptyTrash(): Promise<void> {
    const trash = path.join(this.paths.storageRoot, "trash");
    await rm(trash, { recursive: true, force: true }).catch((error: unknown) =>
      this.#logger.error("could not delete a reset workspace storage", { dir: trash, error: String(error) }),
    );
  }

  /** Runs a clean-up command and counts the ids it prints. */
  async #count(command: Command | null, what: string, key: string): Promise<number> {
    if (!command) return 0;
    try {
      return (await captureProcess(command)).split("\n").filter((line) => /^[0-9a-f]{12,64}$/.test(line.trim())).length;
    } catch (error) {
      this.#logger.error(`could not remove ${what} left in a workspace storage`, { workspace: key, error: String(error) });
      return 0;
    }
  }
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

/** Whether containers-storage's container list in `dir` is non-empty (or unreadable). */
async function listsContainers(dir: string): Promise<boolean> {
  const text = await readFile(path.join(dir, "containers.json"), "utf8").catch(() => "[]");
  try {
    const list: unknown = JSON.parse(text);
    return !Array.isArray(list) || list.length > 0;
  } catch {
    return true;
  }
}
