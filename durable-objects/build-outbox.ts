/**
 * Delivery of the Build object's outbox items: the work its state changes asked for, done
 * after they were persisted and retried until it succeeds. Each delivery is idempotent.
 */

import { log } from "../workers/log.ts";
import { notifyBuildEnded } from "../workers/webhooks/notify.ts";
import { type LayerResult, revokeJobTokens, syncBuildRow, writeLayerResult } from "./build-d1.ts";
import type { BuildParts } from "./build-effects.ts";
import { type PushResult, writePushResult } from "./build-push.ts";
import type { BuildRecord, OutboxItem } from "./build-store.ts";
import { timelineArchiveKey } from "./build-timeline-store.ts";
import { settleIndexesOfBuild } from "./index-push.ts";
import type { ReleaseOutcome } from "./join-policy.ts";
import { layerBuildName } from "./layer-build.ts";
import { archivePrefix, writeArchive } from "./log-archive.ts";
import { timelineRecord } from "./timeline-snapshot.ts";

/** Performs one outbox item; throws to have it retried. */
export async function deliverOutboxItem(env: Env, rec: BuildRecord, item: OutboxItem, parts: BuildParts): Promise<void> {
  const { store, logs } = parts;
  const payload = JSON.parse(item.payload) as Record<string, unknown>;
  switch (item.kind) {
    case "sync":
      // Reads the state at delivery time, so consecutive syncs cost one write each at most.
      await syncBuildRow(
        env,
        rec,
        store.layers().map((l) => l.key),
      );
      return;
    case "layer_result":
      await writeLayerResult(env, rec, payload as unknown as LayerResult);
      return;
    case "release_key": {
      const { key, outcome } = payload as { key: string; outcome: ReleaseOutcome };
      await env.LAYER_BUILD.getByName(layerBuildName(rec.workspaceId, key)).release(rec.id, rec.mode, outcome);
      return;
    }
    case "push_result": {
      const { imageId, position, result } = payload as { imageId: string; position: number; result: PushResult };
      await writePushResult(env, imageId, position, result);
      return;
    }
    case "release_slot":
      await env.FLEET_SCHEDULER.getByName(payload.fleetId as string).release(rec.id);
      return;
    case "revoke_tokens":
      await revokeJobTokens(env, payload.hashes as string[]);
      return;
    case "archive_logs": {
      // Written once: a retry after the chunks were cleared must not overwrite the archive with nothing.
      if (rec.logArchive === null) {
        // The timeline first: a reader that finds the log archive's index finds the timeline too.
        const timeline = JSON.stringify(timelineRecord(store, parts.timeline, Date.now()));
        await env.LOGS.put(timelineArchiveKey(archivePrefix(rec.workspaceId, rec.id)), timeline, {
          httpMetadata: { contentType: "application/json" },
        });
        const prefix = await writeArchive(env.LOGS, archivePrefix(rec.workspaceId, rec.id), (cursor) =>
          logs.read(cursor, 512, 1024 * 1024),
        );
        store.setField("log_archive", prefix);
        logs.clear();
      }
      await syncBuildRow(
        env,
        store.load()!,
        store.layers().map((l) => l.key),
      );
      // Queued once, when the build ends, after its layer results: D1 now shows its images final.
      // Webhook subscribers are told (idempotent per image, so a retried item enqueues nothing twice).
      const scope = { workspaceId: rec.workspaceId, workspaceName: rec.workspaceName, origin: rec.origin };
      await notifyBuildEnded(env, rec.id, scope);
      // A multi-platform image whose last platform this was is assembled, tagged and pushed now.
      await settleIndexesOfBuild(env, rec.id, { ...scope, requestId: null });
      return;
    }
    default:
      log("error", "unknown outbox item dropped", { object: "Build", buildId: rec.id, kind: item.kind });
  }
}
