/**
 * What a submission's layers to build refer to must exist before anything is dispatched: the
 * secrets they use (with their required keys), their context manifests at the declared sizes,
 * every file blob those manifests name (docs/decisions/0022), and a fleet for their platform
 * when it is not the default (decision 0023: the default platform keeps what a build without a
 * fleet always did, a `no_fleet` failure). The `context_not_found` answer lists every missing
 * manifest and blob: the SDK uploads exactly those.
 */
import { DEFAULT_PLATFORM, type LayerSpec } from "@kiln-build/protocol";
import { missingBlobsOf } from "../contexts/manifests.ts";
import { contextStatus } from "../contexts/store.ts";
import { ApiError } from "../errors.ts";
import { checkRequiredKeys } from "../secrets/store.ts";
import { checkPlatformOffered } from "./platforms.ts";

/** Throws a 422 naming the first missing secret, missing contexts or a context of the wrong size. */
export async function checkReferences(
  env: Env,
  workspaceId: string,
  todo: LayerSpec[],
  requiredKeys: Record<string, string[]>,
): Promise<void> {
  const platform = todo[0]?.platform;
  if (platform !== undefined && platform !== DEFAULT_PLATFORM) await checkPlatformOffered(env, workspaceId, platform);
  const names = new Set<string>();
  for (const layer of todo) {
    for (const name of layer.secrets) names.add(name);
    if (layer.registryAuth) names.add(layer.registryAuth.secret);
  }
  await checkRequiredKeys(
    env,
    workspaceId,
    [...names].map((name) => ({ name, requiredKeys: requiredKeys[name] ?? [] })),
  );
  const declared = todo.flatMap((l) => (l.context ? [l.context] : []));
  const { missing, sizes } = await contextStatus(
    env,
    workspaceId,
    declared.map((d) => d.digest),
  );
  // The runner is told the declared size; it must be the stored manifest's, not whatever the client claims.
  const wrong = declared.find((d) => sizes.has(d.digest) && sizes.get(d.digest) !== d.sizeBytes);
  if (wrong) {
    const storedBytes = sizes.get(wrong.digest)!;
    throw new ApiError(
      422,
      "context_size_mismatch",
      `Build context ${wrong.digest} is ${storedBytes} bytes as uploaded, but the layer declares ${wrong.sizeBytes}. Declare the manifest's exact size in bytes.`,
      { digest: wrong.digest, declaredBytes: wrong.sizeBytes, storedBytes },
    );
  }
  const blobs = await missingBlobsOf(env, workspaceId, [...sizes.keys()]);
  if (blobs.invalid) {
    throw new ApiError(422, "invalid_manifest", `Build context ${blobs.invalid} is not a valid context manifest.`, {
      digest: blobs.invalid,
    });
  }
  const lacking = [...missing, ...blobs.missing];
  if (lacking.length > 0) {
    throw new ApiError(
      422,
      "context_not_found",
      `Build context ${lacking[0]} has not been uploaded${lacking.length > 1 ? ` (and ${lacking.length - 1} more)` : ""}. Put each missing manifest with PUT /v1/contexts/manifests/<digest> and each missing file blob with POST /v1/contexts/blobs or PUT /v1/contexts/<digest> first.`,
      { missing: lacking },
    );
  }
}
