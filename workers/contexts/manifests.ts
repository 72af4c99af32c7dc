/**
 * Context manifests on the server (docs/decisions/0022): a layer's context digest names a
 * manifest stored like any other content-addressed object; its files are blobs the same
 * workspace uploaded. What a submission lacks is every missing manifest plus every missing
 * blob of the manifests it has. "Present" is always D1's record and an R2 head, never D1
 * alone, so a blob deleted from R2 is asked for again.
 */
import { type ContextManifest, decodeContextManifest, MAX_MANIFEST_BYTES, manifestBlobs } from "@kiln-build/protocol";
import { drizzle } from "drizzle-orm/d1";
import { contextUploads } from "../db/schema/contexts.ts";
import { contextStatus } from "./store.ts";
import { contextKey } from "./upload-plan.ts";

/** The stored manifest `digest`, or null when it is gone or not a valid manifest. */
export async function readManifest(env: Env, digest: string): Promise<ContextManifest | null> {
  const object = await env.CONTEXTS.get(contextKey(digest));
  if (!object) return null;
  if (object.size > MAX_MANIFEST_BYTES) {
    await object.body.cancel();
    return null;
  }
  return decodeContextManifest(new Uint8Array(await object.arrayBuffer()));
}

/**
 * The blobs the present manifests `manifestDigests` name that the workspace lacks (never
 * uploaded, or gone from R2), or the first manifest that does not parse as `invalid` (never
 * expected: manifest puts validate), so the caller can refuse it.
 */
export async function missingBlobsOf(
  env: Env,
  workspaceId: string,
  manifestDigests: readonly string[],
): Promise<{ missing: string[]; invalid: string | null }> {
  const blobs = new Set<string>();
  for (const digest of manifestDigests) {
    const manifest = await readManifest(env, digest);
    if (!manifest) return { missing: [], invalid: digest };
    for (const blob of manifestBlobs(manifest)) blobs.add(blob.digest);
  }
  const missing = blobs.size > 0 ? (await contextStatus(env, workspaceId, [...blobs])).missing : [];
  return { missing, invalid: null };
}

/** Records many verified uploads of one workspace in one D1 batch (idempotent). */
export async function recordUploads(env: Env, workspaceId: string, stored: readonly { digest: string; sizeBytes: number }[]) {
  if (stored.length === 0) return;
  const db = drizzle(env.DB);
  const checkedAt = new Date();
  const statements = stored.map((s) =>
    db
      .insert(contextUploads)
      .values({ workspaceId, digest: s.digest, sizeBytes: s.sizeBytes, checkedAt })
      .onConflictDoUpdate({ target: [contextUploads.workspaceId, contextUploads.digest], set: { checkedAt } }),
  );
  await db.batch(statements as [(typeof statements)[number], ...(typeof statements)[number][]]);
}
