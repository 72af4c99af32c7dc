/**
 * The digests a job's runner resolved for the base images it pulled (decision 0024, unpinned
 * `FROM`), pure check plus a small store. A report is kept only from the current attempt, only
 * for layers this build builds (a cached layer was built by another build, whose runner pulled
 * its own bases), and only for references a `FROM` line of that layer's spec names without a
 * digest: a runner cannot add dependencies the Dockerfile does not have. The digests remain the
 * runner's word (the registry is not asked again); the provenance says so.
 */
import type { BaseDigestsReport, LayerSpec } from "@kiln-build/protocol";
import { baseImagesOf } from "../workers/attestations/provenance.ts";
import { isAttemptLive, type MachineState } from "./build-machine.ts";
import type { AttemptRow, LayerRow } from "./build-store.ts";

/** The Build object's table of resolved base digests (one migration of BUILD_MIGRATIONS). */
export const BASE_DIGESTS_TABLE =
  "CREATE TABLE base_digests (layer_key TEXT NOT NULL, reference TEXT NOT NULL, digest TEXT NOT NULL, attempt_no INTEGER NOT NULL, PRIMARY KEY (layer_key, reference))";

/** One resolved base image of one layer. */
export type BaseDigest = { layerKey: string; reference: string; digest: string };

/** Why a report is refused. */
export type BaseDigestsRefusal = "unknown_build" | "stale_attempt" | "unknown_layer" | "unknown_base";

/** The entries of `report` to keep, or why it is refused. `specOf(index)` reads a layer's stored spec. */
export function checkBaseDigests(
  machine: MachineState | null,
  attempt: AttemptRow | null,
  layers: readonly LayerRow[],
  report: BaseDigestsReport,
  specOf: (index: number) => LayerSpec,
): { ok: true; bases: BaseDigest[] } | { ok: false; error: BaseDigestsRefusal } {
  if (!machine) return { ok: false, error: "unknown_build" };
  if (!attempt || !isAttemptLive(machine.status) || attempt.attemptNo !== machine.attemptNo) return { ok: false, error: "stale_attempt" };
  if (report.attemptId !== attempt.attemptId || report.fencingToken !== attempt.attemptNo) return { ok: false, error: "stale_attempt" };
  for (const base of report.bases) {
    const layer = layers.find((l) => l.key === base.layerKey);
    if (!layer || (layer.state !== "claimed" && layer.state !== "built")) return { ok: false, error: "unknown_layer" };
    const named = baseImagesOf(specOf(layer.index)).some((d) => d.digest === undefined && d.uri === `docker://${base.reference}`);
    if (!named) return { ok: false, error: "unknown_base" };
  }
  return { ok: true, bases: report.bases.map(({ layerKey, reference, digest }) => ({ layerKey, reference, digest })) };
}

/** Typed access to the table. */
export class BaseDigestStore {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Records `bases` from attempt `attemptNo` (a later report of the same image replaces the earlier). */
  record(attemptNo: number, bases: readonly BaseDigest[]): void {
    for (const b of bases)
      this.#sql.exec(
        `INSERT INTO base_digests (layer_key, reference, digest, attempt_no) VALUES (?, ?, ?, ?)
         ON CONFLICT (layer_key, reference) DO UPDATE SET digest = excluded.digest, attempt_no = excluded.attempt_no`,
        b.layerKey,
        b.reference,
        b.digest,
        attemptNo,
      );
  }

  /** Every recorded base digest. */
  all(): BaseDigest[] {
    return this.#sql
      .exec<{ layer_key: string; reference: string; digest: string }>(
        "SELECT layer_key, reference, digest FROM base_digests ORDER BY layer_key, reference",
      )
      .toArray()
      .map((r) => ({ layerKey: r.layer_key, reference: r.reference, digest: r.digest }));
  }
}
