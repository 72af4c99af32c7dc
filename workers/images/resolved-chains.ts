/**
 * A per-isolate memo of chains known to be fully cached, so a repeated cached resolve (the
 * SDK resubmits the same chain on every `image.build()`) is answered with no D1 statement.
 *
 * Sound without expiry because what it remembers never becomes false: layer results are
 * content-addressed and never deleted (a forced rebuild replaces a digest, not the fact that
 * the key is cached), and the memo is keyed by the chain's content-addressed image id, whose
 * row exists once it is remembered. Requests that must see the cache afresh (force, ignore,
 * Idempotency-Key) do not consult it. Bounded; the least recently used entry goes first.
 */

const MAX_ENTRIES = 8192;
// Value: the workspace's name, which a tag written on a remembered chain needs for its edge-cache purge.
const resolved = new Map<string, string>();

const keyOf = (workspaceId: string, imageId: string) => `${workspaceId}/${imageId}`;

/** The workspace's name when this isolate has answered `imageId` (a fully cached chain of `workspaceId`) before, else null. */
export function resolvedWorkspaceName(workspaceId: string, imageId: string): string | null {
  const key = keyOf(workspaceId, imageId);
  const name = resolved.get(key);
  if (name === undefined) return null;
  // Re-inserted: a Map iterates in insertion order, so this keeps recent entries last.
  resolved.delete(key);
  resolved.set(key, name);
  return name;
}

/** Records that `imageId` is a fully cached chain of `workspaceId` (named `workspaceName`) whose image row exists. */
export function rememberResolved(workspaceId: string, workspaceName: string, imageId: string): void {
  const key = keyOf(workspaceId, imageId);
  resolved.delete(key);
  if (resolved.size >= MAX_ENTRIES) resolved.delete(resolved.keys().next().value!);
  resolved.set(key, workspaceName);
}

/** Forgets everything (tests). */
export function clearResolvedChains(): void {
  resolved.clear();
}
