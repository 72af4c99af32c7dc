/**
 * The background half of a job's layer pipeline: layer i is pushed and verified while
 * layer i+1 builds. Publishes run one at a time, in the order they were queued, so a
 * layer's parent blobs are already in the registry when it is pushed (never uploaded
 * twice) and `layer_succeeded` events come out in layer order. The first failure ends the
 * queue: later layers are skipped (the orchestrator must hear of layers in order, and a
 * failed job does not need them), and `signal` aborts so the build running meanwhile stops.
 */

/** Publishes built layers one at a time, in order, beside the next layer's build. */
export class PublishQueue<T> {
  readonly #halt = new AbortController();
  #tail: Promise<void> = Promise.resolve();
  #failure: { error: unknown } | null = null;

  /** Aborted (with the error) as soon as a publish fails. */
  get signal(): AbortSignal {
    return this.#halt.signal;
  }

  /** The error of the first failed publish, or null. */
  get failure(): unknown {
    return this.#failure?.error ?? null;
  }

  /** Queues `publish` after every earlier one; `onPublished` gets its result, in queue order. Skipped after a failure. */
  add(publish: () => Promise<T>, onPublished: (result: T) => void): void {
    this.#tail = this.#tail.then(async () => {
      if (this.#failure) return;
      try {
        onPublished(await publish());
      } catch (error) {
        this.#failure = { error };
        this.#halt.abort(error);
      }
    });
  }

  /** Resolves once every queued publish has finished or been skipped. Never rejects. */
  settled(): Promise<void> {
    return this.#tail;
  }
}
