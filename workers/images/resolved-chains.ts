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
import type { LayerResultRow } from "./view.ts";

// Entries hold their layers' results (about 250 bytes each): 8192 chains of a few layers stay within a few MiB.
const MAX_ENTRIES = 8192;
const MAX_AGE_MS = 60_000;
/** What a remembered chain is answered with: the workspace's name (a tag written on it needs it for its edge-cache purge) and its layers' results. */
export type ResolvedChain = { name: string; layers: readonly LayerResultRow[] };

// Each chain's answer and when it was remembered.
const resolved = new Map<string, ResolvedChain & { atMs: number }>();

const keyOf = (workspaceId: string, imageId: string) => `${workspaceId}/${imageId}`;

/** The answer this isolate gave for `imageId` (a fully cached chain of `workspaceId`) within the last minute, else null. */
export function resolvedChain(workspaceId: string, imageId: string): ResolvedChain | null {
  const key = keyOf(workspaceId, imageId);
  const entry = resolved.get(key);
  if (entry === undefined) return null;
  resolved.delete(key);
  if (Date.now() - entry.atMs > MAX_AGE_MS) return null;
  // Re-inserted: a Map iterates in insertion order, so this keeps recent entries last.
  resolved.set(key, entry);
  return entry;
}

/** Records that `imageId` is a fully cached chain of `workspaceId` (answered with `chain`) whose image row exists. */
export function rememberResolved(workspaceId: string, imageId: string, chain: ResolvedChain): void {
  const key = keyOf(workspaceId, imageId);
  resolved.delete(key);
  if (resolved.size >= MAX_ENTRIES) resolved.delete(resolved.keys().next().value!);
  resolved.set(key, { ...chain, atMs: Date.now() });
}

/** Forgets everything (tests). */
export function clearResolvedChains(): void {
  resolved.clear();
}

/** Forgets one image (deleted): this isolate stops answering its chain without D1 at once. */
export function forgetResolved(workspaceId: string, imageId: string): void {
  resolved.delete(keyOf(workspaceId, imageId));
}
