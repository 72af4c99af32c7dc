/**
 * A per-isolate memo of chains known to be fully cached, so a repeated cached resolve (the
 * SDK resubmits the same chain on every `image.build()`) is answered with no D1 statement.
 *
 * What it remembers can become false: a cached layer whose manifest went missing from the
 * registry is invalidated when a runner fails to pull it (durable-objects/report-verify.ts), and
 * another isolate's memo cannot hear of that. So an entry lives at most `MAX_AGE_MS`: a stale
 * "succeeded" is answered for at most that long, and a repeated resolve costs one D1 read per
 * chain per minute. The memo is keyed by the chain's content-addressed image id, whose row
 * exists once it is remembered. Requests that must see the cache afresh (force, ignore,
 * Idempotency-Key) do not consult it. Bounded; the least recently used entry goes first.
 */

const MAX_ENTRIES = 8192;
const MAX_AGE_MS = 60_000;
// The workspace's name (a tag written on a remembered chain needs it for its edge-cache purge) and when it was remembered.
const resolved = new Map<string, { name: string; atMs: number }>();

const keyOf = (workspaceId: string, imageId: string) => `${workspaceId}/${imageId}`;

/** The workspace's name when this isolate has answered `imageId` (a fully cached chain of `workspaceId`) before, else null. */
export function resolvedWorkspaceName(workspaceId: string, imageId: string): string | null {
  const key = keyOf(workspaceId, imageId);
  const entry = resolved.get(key);
  if (entry === undefined) return null;
  resolved.delete(key);
  if (Date.now() - entry.atMs > MAX_AGE_MS) return null;
  // Re-inserted: a Map iterates in insertion order, so this keeps recent entries last.
  resolved.set(key, entry);
  return entry.name;
}

/** Records that `imageId` is a fully cached chain of `workspaceId` (named `workspaceName`) whose image row exists. */
export function rememberResolved(workspaceId: string, workspaceName: string, imageId: string): void {
  const key = keyOf(workspaceId, imageId);
  resolved.delete(key);
  if (resolved.size >= MAX_ENTRIES) resolved.delete(resolved.keys().next().value!);
  resolved.set(key, { name: workspaceName, atMs: Date.now() });
}

/** Forgets everything (tests). */
export function clearResolvedChains(): void {
  resolved.clear();
}

/** Forgets one image (deleted): this isolate stops answering its chain without D1 at once. */
export function forgetResolved(workspaceId: string, imageId: string): void {
  resolved.delete(keyOf(workspaceId, imageId));
}
