/**
 * A Build's push to external registries (decision 0019): what the submission asked for, kept
 * in the object's own tables, the per-target results the runner reports, the job's `push`
 * and the D1 write of a result. A build with a push is the submission's own (never shared
 * through LayerBuild.submit), so its targets are one image's. Pure helpers plus a small store.
 */
import type { JobPush, PushTarget } from "@kiln-build/protocol";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { imagePushes } from "../workers/db/schema/pushes.ts";

/** The Build object's push tables (one migration of BUILD_MIGRATIONS). */
export const PUSH_TABLES = `CREATE TABLE push (one INTEGER PRIMARY KEY CHECK (one = 1), spec TEXT NOT NULL);
   CREATE TABLE push_results (position INTEGER PRIMARY KEY, attempt_no INTEGER NOT NULL, status TEXT NOT NULL, digest TEXT, message TEXT)`;

/** What a submission with `push` asks its build to do once the image exists. */
export type BuildPush = {
  /** The image whose targets these are (`image_pushes.image_id`). */
  imageId: string;
  targets: PushTarget[];
  labels: Record<string, string>;
  /** Kiln's `org.opencontainers.image.*` annotations included (computed at submission). */
  annotations: Record<string, string>;
  /** What to copy instead of the build's top layer: a multi-platform image's OCI index, pinned by digest (index-push.ts). */
  source?: string;
};

/** One target's result as the runner reported it. */
export type PushResult = { reference: string; status: "succeeded" | "failed"; digest: string | null; message: string | null };

/** The secret names the push's logins come from, sorted. */
export function pushSecretNames(push: BuildPush | null): string[] {
  return [...new Set((push?.targets ?? []).flatMap((t) => (t.secret ? [t.secret] : [])))].sort();
}

/** The job's `push`: copy `source` (null: the job's last layer once built) to every target. */
export function jobPush(push: BuildPush, source: string | null): JobPush {
  return { source, targets: push.targets, labels: push.labels, annotations: push.annotations };
}

/** The position of `reference` among the targets, or -1 when the job was not asked to push there. */
export function targetPosition(push: BuildPush | null, reference: string): number {
  return push ? push.targets.findIndex((t) => t.reference === reference) : -1;
}

/** True when every target has a result from attempt `attemptNo`. */
export function allReported(push: BuildPush | null, reported: ReadonlySet<number>): boolean {
  return push === null || push.targets.every((_, i) => reported.has(i));
}

/** Typed access to the push tables. */
export class BuildPushStore {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Stores the push of a new build (idempotent). */
  init(push: BuildPush | null | undefined): void {
    if (push) this.#sql.exec("INSERT INTO push (one, spec) VALUES (1, ?) ON CONFLICT (one) DO NOTHING", JSON.stringify(push));
  }

  /** The build's push, or null when it pushes nowhere. */
  load(): BuildPush | null {
    const row = this.#sql.exec<{ spec: string }>("SELECT spec FROM push").toArray()[0];
    return row ? (JSON.parse(row.spec) as BuildPush) : null;
  }

  /** Records a target's result from attempt `attemptNo` (a later attempt's replaces an earlier one's). */
  record(position: number, attemptNo: number, result: PushResult): void {
    this.#sql.exec(
      `INSERT INTO push_results (position, attempt_no, status, digest, message) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (position) DO UPDATE SET attempt_no = excluded.attempt_no, status = excluded.status, digest = excluded.digest, message = excluded.message`,
      position,
      attemptNo,
      result.status,
      result.digest,
      result.message,
    );
  }

  /** Target `position`'s recorded result and the attempt that reported it, or null. */
  result(position: number): { attemptNo: number; status: string; digest: string | null } | null {
    const row = this.#sql
      .exec<{ attempt_no: number; status: string; digest: string | null }>(
        "SELECT attempt_no, status, digest FROM push_results WHERE position = ?",
        position,
      )
      .toArray()[0];
    return row ? { attemptNo: row.attempt_no, status: row.status, digest: row.digest } : null;
  }

  /** The positions attempt `attemptNo` has reported. */
  reported(attemptNo: number): Set<number> {
    return new Set(
      this.#sql
        .exec<{ position: number }>("SELECT position FROM push_results WHERE attempt_no = ?", attemptNo)
        .toArray()
        .map((r) => r.position),
    );
  }
}

/** Writes one target's result to D1 (an outbox item: idempotent). */
export async function writePushResult(env: Env, imageId: string, position: number, result: PushResult): Promise<void> {
  await drizzle(env.DB)
    .update(imagePushes)
    .set({ status: result.status, digest: result.digest, message: result.message, updatedAt: new Date() })
    .where(and(eq(imagePushes.imageId, imageId), eq(imagePushes.position, position)))
    .run();
}
