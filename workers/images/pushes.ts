/**
 * The push side of `POST /v1/images` and `GET /v1/images/:id` (decision 0019): the build's
 * push description from a submission, the `image_pushes` rows written before its build
 * exists, and the per-target view. Targets' statuses come from the runner's `push_result`
 * events through the build's outbox; a target still `pending` when its build ended without
 * succeeding is shown as failed, with why.
 */
import { type ImageRequest, type PushView, pushAnnotations } from "@kiln-build/protocol";
import { and, asc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { builds } from "../db/schema/builds.ts";
import { imagePushes } from "../db/schema/pushes.ts";
import { checkRequiredKeys } from "../secrets/store.ts";

/** What a build with a push is given (durable-objects/build-push.ts `BuildPush`). */
export type PushPlan = {
  imageId: string;
  targets: { reference: string; secret: string | null }[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
};

/** The push a submission asks for, with Kiln's OCI annotations (created now, source, revision, build id). */
export function pushPlan(
  body: Pick<ImageRequest, "push" | "labels" | "annotations" | "source" | "revision">,
  imageId: string,
  buildId: string,
  now: Date,
): PushPlan {
  return {
    imageId,
    targets: (body.push ?? []).map((t) => ({ reference: t.reference, secret: t.secret })),
    labels: body.labels ?? {},
    annotations: pushAnnotations({
      annotations: body.annotations,
      createdIso: now.toISOString(),
      source: body.source,
      revision: body.revision,
      buildId,
    }),
  };
}

/** Every login secret the targets name must exist in the workspace (422 `secret_not_found`, naming it). */
export async function checkPushSecrets(env: Env, workspaceId: string, plan: PushPlan): Promise<void> {
  const names = [...new Set(plan.targets.flatMap((t) => (t.secret ? [t.secret] : [])))];
  await checkRequiredKeys(
    env,
    workspaceId,
    names.map((name) => ({ name, requiredKeys: [] })),
  );
}

/** Writes the targets as `pending` (before the build that settles them exists). */
export async function insertPendingPushes(db: D1Database, workspaceId: string, buildId: string, plan: PushPlan): Promise<void> {
  await drizzle(db)
    .insert(imagePushes)
    .values(
      plan.targets.map((t, position) => ({
        imageId: plan.imageId,
        position,
        workspaceId,
        buildId,
        reference: t.reference,
        secretName: t.secret,
      })),
    )
    .onConflictDoNothing();
}

/** A stored target row, as the view reads it. */
export type PushRow = Pick<typeof imagePushes.$inferSelect, "reference" | "status" | "digest" | "message"> & {
  attestations?: PushView["attestations"];
};

/**
 * The API's view of an image's targets, pure. `buildStatus`: the pushing build's status; a
 * target it left `pending` by ending without success did not get pushed, and says why.
 */
export function pushViews(rows: readonly PushRow[], buildStatus: string | null): PushView[] {
  const ended = buildStatus === "failed" || buildStatus === "cancelled" || buildStatus === "timeout";
  return rows.map(({ reference, status, digest, message, attestations }) =>
    status === "pending" && ended
      ? { reference, status: "failed", digest: null, message: `not pushed: the build ended ${buildStatus} before this target was pushed` }
      : { reference, status, digest, message, ...(attestations ? { attestations } : {}) },
  );
}

/** The image's targets in submission order (undefined when it pushes nowhere), with one D1 query. */
export async function loadPushViews(db: D1Database, workspaceId: string, imageId: string): Promise<PushView[] | undefined> {
  const rows = await drizzle(db)
    .select({
      reference: imagePushes.reference,
      status: imagePushes.status,
      digest: imagePushes.digest,
      message: imagePushes.message,
      attestations: imagePushes.attestations,
      buildStatus: builds.status,
    })
    .from(imagePushes)
    .leftJoin(builds, eq(builds.id, imagePushes.buildId))
    .where(and(eq(imagePushes.imageId, imageId), eq(imagePushes.workspaceId, workspaceId)))
    .orderBy(asc(imagePushes.position));
  return rows.length === 0 ? undefined : pushViews(rows, rows[0]!.buildStatus ?? null);
}
