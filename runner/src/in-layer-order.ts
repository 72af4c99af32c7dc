/**
 * Runs per-layer preparation group after group in layer order, without making the caller
 * wait: the layers of one group (a chain, whose one build needs every member's inputs) are
 * prepared side by side, and a group starts once the one before it is ready, so the next
 * build's inputs never compete with the current build's. Each promise settles with its
 * layer; after a failure the later groups fail with it. Rejections are marked handled: the
 * caller sees them when it awaits that layer, or never.
 */
export function inLayerOrder<L, T>(
  layers: readonly L[],
  prepare: (layer: L, index: number) => Promise<T>,
  groups: readonly (readonly number[])[] = layers.map((_, i) => [i]),
): Promise<T>[] {
  const prepared: Promise<T>[] = new Array(layers.length);
  let previous: Promise<unknown> = Promise.resolve();
  for (const group of groups) {
    const after = previous;
    const members = group.map((i) => {
      const next = after.then(() => prepare(layers[i]!, i));
      next.catch(() => undefined);
      prepared[i] = next;
      return next;
    });
    previous = Promise.all(members);
    previous.catch(() => undefined);
  }
  return prepared;
}
