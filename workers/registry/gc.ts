/**
 * Registry garbage collection, mark and sweep, run by the cron trigger (`scheduled` in
 * workers/index.ts). Mark: every blob some manifest refers to (registry_manifest_refs),
 * and every blob touched (uploaded, mounted, referenced by a manifest push) within the grace
 * period, so in-flight pushes, whose blobs precede their manifest, are never broken. Sweep:
 * the other blobs (D1 rows, repository links, R2 bytes), manifest bytes no row names, and R2
 * objects under `blobs/` that no row names and that are older than the grace period
 * (leftovers of interrupted completions). Before the blob sweep, manifests of the layer
 * repositories that no Kiln record references any more are deleted (gc-layers.ts), so deleted
 * images' layers are reclaimed. Blobs a repository of a workspace that is pushing a build holds
 * are kept whatever their age. Dry-run reports and changes nothing.
 */
import { and, eq, lt, notExists, sql } from "drizzle-orm";
import { registryBlobs, registryManifestRefs, registryManifests, registryRepositoryBlobs } from "../db/schema/registry.ts";
import { type CollectedLayerManifest, collectLayerManifests } from "./gc-layers.ts";
import { db } from "./store.ts";

/** The grace period when `REGISTRY_GC_GRACE_SECONDS` is unset or invalid: 24 h. */
export const DEFAULT_GRACE_MS = 24 * 60 * 60 * 1000;

/**
 * Objects under `blobs/` no row names are removed only after this long, whatever the grace
 * period: an upload session's parts and tail live up to 12 h idle (RegistryUpload).
 */
export const ORPHAN_OBJECT_MIN_AGE_MS = 24 * 60 * 60 * 1000;

/** The configured grace period (`REGISTRY_GC_GRACE_SECONDS`), in ms. */
export function gcGraceMs(env: { REGISTRY_GC_GRACE_SECONDS?: string }): number {
  const seconds = Number(env.REGISTRY_GC_GRACE_SECONDS);
  return env.REGISTRY_GC_GRACE_SECONDS !== undefined && Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : DEFAULT_GRACE_MS;
}

/** Options of a GC run (`graceMs` defaults to the configured one). */
export type RegistryGcOptions = { dryRun: boolean; now?: number; graceMs?: number };

/** What a GC run deleted (or, in dry-run, would delete). */
export type RegistryGcReport = {
  dryRun: boolean;
  cutoff: string;
  /** Unreferenced manifests of `<ws>/layers` repositories (deleted before the blob sweep). */
  layerManifests: CollectedLayerManifest[];
  blobs: { digest: string; sizeBytes: number; r2Key: string }[];
  manifestObjects: string[];
  orphanObjects: string[];
  freedBytes: number;
};

const PAGE = 500;

/** Runs one mark-and-sweep pass. */
export async function runRegistryGc(env: Env, options: RegistryGcOptions): Promise<RegistryGcReport> {
  const now = options.now ?? Date.now();
  const cutoff = new Date(now - Math.max(options.graceMs ?? gcGraceMs(env), 0));
  const layerManifests = await collectLayerManifests(env, { dryRun: options.dryRun, nowMs: now, cutoffMs: cutoff.getTime() });
  const d = db(env);
  const unreferenced = and(
    lt(registryBlobs.touchedAt, cutoff),
    // A build pushing into its workspace's repositories may have uploaded blobs its manifest does not name yet.
    sql`NOT EXISTS (SELECT 1 FROM registry_repository_blobs rb JOIN registry_repositories r ON r.name = rb.repository
      JOIN job_tokens t ON t.workspace_id = r.workspace_id
      WHERE rb.digest = ${registryBlobs.digest} AND t.expires_at > ${now} AND t.actions LIKE '%"push"%')`,
    notExists(
      d
        .select({ one: sql`1` })
        .from(registryManifestRefs)
        .where(and(eq(registryManifestRefs.child, registryBlobs.digest), eq(registryManifestRefs.kind, "blob"))),
    ),
  );
  const candidates = await d
    .select({ digest: registryBlobs.digest, sizeBytes: registryBlobs.sizeBytes, r2Key: registryBlobs.r2Key })
    .from(registryBlobs)
    .where(unreferenced)
    .all();
  const report: RegistryGcReport = {
    dryRun: options.dryRun,
    cutoff: cutoff.toISOString(),
    layerManifests,
    blobs: [],
    manifestObjects: [],
    orphanObjects: [],
    freedBytes: 0,
  };
  for (const blob of candidates) {
    if (options.dryRun) {
      report.blobs.push(blob);
      continue;
    }
    // Re-checked in the delete itself: a manifest pushed since the mark keeps the blob.
    const gone = await d
      .delete(registryBlobs)
      .where(and(eq(registryBlobs.digest, blob.digest), unreferenced))
      .returning();
    if (gone.length === 0) continue;
    await d.delete(registryRepositoryBlobs).where(eq(registryRepositoryBlobs.digest, blob.digest));
    await env.REGISTRY.delete(blob.r2Key);
    report.blobs.push(blob);
  }
  const liveManifests = new Set(
    (await d.selectDistinct({ digest: registryManifests.digest }).from(registryManifests).all()).map((r) => r.digest.slice(7)),
  );
  const liveKeys = new Set((await d.select({ r2Key: registryBlobs.r2Key }).from(registryBlobs).all()).map((r) => r.r2Key));
  for (const object of await listOlderThan(env.REGISTRY, "manifests/sha256/", cutoff)) {
    if (!liveManifests.has(object.key.slice("manifests/sha256/".length))) report.manifestObjects.push(object.key);
  }
  const orphanCutoff = new Date(Math.min(cutoff.getTime(), now - ORPHAN_OBJECT_MIN_AGE_MS));
  for (const object of await listOlderThan(env.REGISTRY, "blobs/", orphanCutoff)) {
    // Tails of live upload sessions are younger than this cutoff (sessions expire after 12 h idle).
    if (!liveKeys.has(object.key) && !report.blobs.some((b) => b.r2Key === object.key)) report.orphanObjects.push(object.key);
  }
  if (!options.dryRun) {
    const keys = [...report.manifestObjects, ...report.orphanObjects];
    for (let i = 0; i < keys.length; i += 1000) await env.REGISTRY.delete(keys.slice(i, i + 1000));
  }
  report.freedBytes = report.blobs.reduce((n, b) => n + b.sizeBytes, 0);
  console.log(
    JSON.stringify({
      level: "info",
      msg: "registry gc",
      dryRun: report.dryRun,
      layerManifests: report.layerManifests.length,
      blobs: report.blobs.length,
      manifestObjects: report.manifestObjects.length,
      orphanObjects: report.orphanObjects.length,
      freedBytes: report.freedBytes,
    }),
  );
  return report;
}

async function listOlderThan(bucket: R2Bucket, prefix: string, cutoff: Date): Promise<R2Object[]> {
  const out: R2Object[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor, limit: PAGE });
    for (const object of page.objects) if (object.uploaded < cutoff) out.push(object);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out;
}
