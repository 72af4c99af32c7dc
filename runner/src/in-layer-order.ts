/** Runs per-layer preparation one layer after another without making the caller wait. */
/**
 * Runs `prepare` for every layer, one after another in layer order, without waiting for the
 * caller; each promise settles with its layer. After a failure the later ones fail with it.
 * Rejections are marked handled: the caller sees them when it awaits that layer, or never.
 */
export function inLayerOrder<L, T>(layers: readonly L[], prepare: (layer: L, index: number) => Promise<T>): Promise<T>[] {
  let previous: Promise<unknown> = Promise.resolve();
  return layers.map((layer, i) => {
    const next = previous.then(() => prepare(layer, i));
    next.catch(() => undefined);
    previous = next;
    return next;
  });
}
