/**
 * Removes working containers that a stopped build left in local storage. buildah cleans up
 * after a failed step or a SIGTERM during a RUN step, but dies without cleaning up when the
 * signal lands while it is pulling, committing or setting a step up. Which leftover belongs
 * to which build cannot be told apart, so the janitor waits until no build runs, then runs
 * the backend's cleanup (`buildah rm --all`, which only touches buildah's own containers);
 * builds that start meanwhile wait for it. The runner's storage should be its own.
 *
 * Pushes enter too: a job pushes layer i while layer i+1 builds, so "no tool running"
 * means neither. Only a stopped build marks the storage dirty (a push reads the image and
 * leaves no container), and the mark survives until the last tool leaves, whichever it is.
 */
import type { BuildBackend } from "./backends/types.ts";
import type { Logger } from "./logger.ts";
import { runProcess } from "./process.ts";

/** Tracks running build tools and cleans storage when the last one ends after a stopped build. */
export class StorageJanitor {
  readonly #backend: BuildBackend;
  readonly #logger: Logger;
  #active = 0;
  #dirty = false;
  #cleaning: Promise<void> | null = null;

  constructor(backend: BuildBackend, logger: Logger) {
    this.#backend = backend;
    this.#logger = logger;
  }

  /**
   * Registers a running tool, build or push (waiting for a running cleanup); returns the
   * function that ends it, told whether a build was stopped mid-way.
   */
  async enter(): Promise<(stopped: boolean) => Promise<void>> {
    while (this.#cleaning) await this.#cleaning;
    this.#active++;
    let left = false;
    return async (stopped: boolean) => {
      if (left) return;
      left = true;
      this.#active--;
      if (stopped) this.#dirty = true;
      if (this.#active === 0 && this.#dirty && !this.#cleaning) {
        this.#dirty = false;
        this.#cleaning = this.#clean().finally(() => {
          this.#cleaning = null;
        });
      }
      if (this.#cleaning) await this.#cleaning;
    };
  }

  async #clean(): Promise<void> {
    const command = this.#backend.cleanup();
    if (!command) return;
    const result = await runProcess(command, { killGraceMs: 5_000 }).catch((error: unknown) => {
      this.#logger.warn("storage cleanup could not start", { error: String(error) });
      return null;
    });
    if (result && result.exitCode !== 0) this.#logger.warn("storage cleanup failed", { exitCode: result.exitCode });
  }
}
