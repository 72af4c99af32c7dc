/**
 * Registry garbage collection, mark and sweep, run by the cron trigger (`scheduled` in
 * workers/index.ts). Mark: every blob some manifest refers to (registry_manifest_refs),
 * and every blob touched (uploaded, mounted, referenced by a manifest push) within the grace
 * period, so in-flight pushes, whose blobs precede their manifest, are never broken. Sweep:
 * the other blobs (D1 rows, repository links, R2 bytes), manifest bytes no row names, and R2
 * objects under `blobs/` that no row names and that are older than the grace period
 * (leftovers of interrupted completions). Dry-run reports and changes nothing.
 */
import { and, eq, lt, notExists, sql } from "drizzle-orm";
import { registryBlobs, registryManifestRefs, registryManifests, registryRepositoryBlobs } from "../db/schema/registry.ts";
import { db } from "./store.ts";

/** The shortest grace period the GC accepts: 24 h. */
export const MIN_GRACE_MS = 24 * 60 * 60 * 1000;

/** Options of a GC run. */
export type RegistryGcOptions = { dryRun: boolean; now?: number; graceMs?: number };

/** What a GC run deleted (or, in dry-run, would delete). */
export type RegistryGcReport = {
  dryRun: boolean;
  cutoff: string;
  blobs: { digest: string; sizeBytes: number; r2Key: string }[];
  manifestObjects: string[];
  orphanObjects: string[];
  freedBytes: number;
};

const PAGE = 500;

/** Runs one mark-and-sweep pass. `graceMs` below 24 h is raised to 24 h. */
export async function runRegistryGc(env: Env, options: RegistryGcOptions): Promise<RegistryGcReport> {
  const now = options.now ?? Date.now();
  const cutoff = new Date(now - Math.max(options.graceMs ?? MIN_GRACE_MS, MIN_GRACE_MS));
  const d = db(env);
  const unreferenced = and(
    lt(registryBlobs.touchedAt, cutoff),
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
  for (const object of await listOlderThan(env.REGISTRY, "blobs/", cutoff)) {
    // Tails of live upload sessions are younger than the cutoff (sessions expire after 12 h idle).
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
