// Probes shared by the runner-trust tests: the cache's D1 row of a key, a build's log text,
// a build's timer made due and run, and the LayerBuild object of a key.
import { env } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { layerBuildName } from "../../../durable-objects/layer-build.ts";
import { layers } from "../../../workers/db/schema/layers.ts";
import { apiJson, buildStub, makeDue, settle } from "../../workers/helpers.ts";
import { layerBuildSnapshot } from "../../workers/object-probes.ts";

/** The cache's D1 row of (workspace, key), or null. */
export async function cacheRow(workspaceId: string, key: string) {
  return (
    (await drizzle(env.DB)
      .select()
      .from(layers)
      .where(and(eq(layers.workspaceId, workspaceId), eq(layers.key, key)))
      .get()) ?? null
  );
}

/** The LayerBuild object's state of (workspace, key). */
export function keyState(workspaceId: string, key: string) {
  return layerBuildSnapshot(env.LAYER_BUILD.getByName(layerBuildName(workspaceId, key)));
}

/** Everything the build's log holds, as text. */
export async function logText(token: string, buildId: string): Promise<string> {
  const page = await apiJson("GET", `/v1/builds/${buildId}/logs?limit=1000`, { token });
  return (page.body.chunks as { data: string }[]).map((c) => c.data).join("\n");
}

/** Makes timer `name` of a build due, runs the due timers, and returns the build's snapshot. */
export async function fire(buildId: string, name: string) {
  await makeDue(buildStub(buildId), name);
  return settle(buildId);
}

/** A `failed` event as the reference runner sends it when buildah cannot pull `reference` (manifest unknown). */
export function pullFailed(reference: string, layerKey: string | null) {
  const { repo, tagOrDigest } = splitForBuildah(reference);
  const line = `Error: creating build container: initializing source docker://${reference}: reading manifest ${tagOrDigest} in ${repo}: manifest unknown: manifest unknown to registry`;
  return {
    type: "failed",
    reason: "infra",
    message: `buildah build exited with 125: ${line}`,
    layerKey,
    exitCode: null,
    logTail: [`STEP 1/2: FROM ${reference}`, `Trying to pull ${reference}...`, line],
  } as const;
}

function splitForBuildah(reference: string): { repo: string; tagOrDigest: string } {
  const at = reference.indexOf("@");
  if (at >= 0) return { repo: reference.slice(0, at), tagOrDigest: reference.slice(at + 1) };
  const colon = reference.lastIndexOf(":");
  return { repo: reference.slice(0, colon), tagOrDigest: reference.slice(colon + 1) };
}
