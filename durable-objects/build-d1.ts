/**
 * The Build object's writes to D1: the `builds` projection, layer results (`build_layers`, and
 * `layers` by the build's cache mode), dispatch attempts and per-attempt job tokens. Every
 * write is idempotent, because the object's outbox may deliver an item twice.
 */
import { inArray, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { buildAttempts, buildLayers, builds } from "../workers/db/schema/builds.ts";
import { jobTokens } from "../workers/db/schema/job-tokens.ts";
import { layers } from "../workers/db/schema/layers.ts";
import { publishBuiltTags } from "../workers/images/oci-tags.ts";
import type { BuildRecord } from "./build-store.ts";

/** What a job token may do: pull and push the workspace's repositories, download its contexts. */
export const JOB_TOKEN_ACTIONS = ["pull", "push", "context:read"];

/** Upserts the build's D1 row from the object's state. */
export async function syncBuildRow(env: Env, rec: BuildRecord, layerKeys: string[]): Promise<void> {
  const m = rec.machine;
  const row = {
    id: rec.id,
    workspaceId: rec.workspaceId,
    topKey: rec.topKey,
    layerKeys,
    mode: rec.mode,
    status: m.status,
    failureReason: m.failure?.reason ?? null,
    failureMessage: m.failure?.message ?? null,
    // What the runner reported with the failure; nothing without one (an object from before
    // details were cleared on retry may still hold an earlier attempt's layer).
    failureExitCode: m.failure ? rec.failureExitCode : null,
    failureLayerKey: m.failure ? rec.failedLayer : null,
    failureLogTail: m.failure && rec.failureLogTail.length ? rec.failureLogTail : null,
    attempts: m.attemptNo,
    fleetId: rec.slotFleet,
    cancelRequested: m.cancelRequested,
    logArchive: rec.logArchive,
    createdAt: new Date(rec.createdMs),
    updatedAt: new Date(rec.updatedMs),
    finishedAt: rec.finishedMs === null ? null : new Date(rec.finishedMs),
  };
  const { id: _id, workspaceId: _ws, createdAt: _c, fleetId, ...changes } = row;
  // A fleet id, once known, is kept after the slot is released (it names where the last attempt ran).
  await drizzle(env.DB)
    .insert(builds)
    .values(row)
    .onConflictDoUpdate({ target: builds.id, set: { ...changes, fleetId: sql`coalesce(${fleetId}, ${builds.fleetId})` } });
}

/** A layer the build produced. */
export type LayerResult = { key: string; digest: string; reference: string; sizeBytes: number };

/**
 * Records a built layer: always in `build_layers`; in the cache `layers` first-writer-wins for
 * normal builds, replacing for forced ones, never for `ignoreCache` builds.
 */
export async function writeLayerResult(env: Env, rec: BuildRecord, layer: LayerResult): Promise<void> {
  const db = drizzle(env.DB);
  const own = db
    .insert(buildLayers)
    .values({ buildId: rec.id, ...layer })
    .onConflictDoNothing();
  if (rec.mode === "ignore") {
    await own;
    await publishIfTop(env, rec, layer);
    return;
  }
  const cached = { workspaceId: rec.workspaceId, buildId: rec.id, ...layer };
  const cache =
    rec.mode === "force"
      ? db
          .insert(layers)
          .values(cached)
          .onConflictDoUpdate({
            target: [layers.workspaceId, layers.key],
            set: {
              digest: layer.digest,
              reference: layer.reference,
              sizeBytes: layer.sizeBytes,
              buildId: rec.id,
              builtAt: sql`(unixepoch('subsec') * 1000)`,
            },
          })
      : db.insert(layers).values(cached).onConflictDoNothing();
  await db.batch([own, cache]);
  await publishIfTop(env, rec, layer);
}

/** The top layer's result completes the build's images: their Kiln `NAME:TAG` tags become OCI tags (workers/images/oci-tags.ts). */
async function publishIfTop(env: Env, rec: BuildRecord, layer: LayerResult): Promise<void> {
  if (layer.key === rec.topKey) await publishBuiltTags(env, rec.workspaceId, rec.id, layer);
}

/** Records an attempt and its job token (only the token's hash). */
export async function recordAttempt(
  env: Env,
  a: {
    workspaceId: string;
    buildId: string;
    attemptId: string;
    attemptNo: number;
    fleetId: string;
    tokenHash: string;
    tokenExpiresMs: number;
  },
): Promise<void> {
  const db = drizzle(env.DB);
  await db.batch([
    db
      .insert(buildAttempts)
      .values({ attemptId: a.attemptId, buildId: a.buildId, fleetId: a.fleetId, attemptNo: a.attemptNo })
      .onConflictDoNothing(),
    db
      .insert(jobTokens)
      .values({
        hash: a.tokenHash,
        workspaceId: a.workspaceId,
        jobId: a.buildId,
        actions: JOB_TOKEN_ACTIONS,
        expiresAt: new Date(a.tokenExpiresMs),
      })
      .onConflictDoNothing(),
  ]);
}

/** Deletes job tokens so an ended attempt's runner can no longer push or download. */
export async function revokeJobTokens(env: Env, hashes: string[]): Promise<void> {
  if (hashes.length === 0) return;
  await drizzle(env.DB).delete(jobTokens).where(inArray(jobTokens.hash, hashes));
}

/** A fresh job token: `kjt_` + 43 base64url characters (256 bits). Shown only to the runner. */
export function newJobToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `kjt_${btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "")}`;
}
