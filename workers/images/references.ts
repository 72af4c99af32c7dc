/**
 * What a submission's layers to build refer to must exist before anything is dispatched: the
 * secrets they use (with their required keys), their uploaded contexts, at the declared sizes,
 * and a fleet for their platform when it is not the default (decision 0023: the default
 * platform keeps what a build without a fleet always did, a `no_fleet` failure).
 * The `context_not_found` answer lists every missing digest: the SDK uploads exactly those.
 */
import { DEFAULT_PLATFORM, type LayerSpec } from "@kiln-build/protocol";
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
  if (missing.length > 0) {
    throw new ApiError(
      422,
      "context_not_found",
      `Build context ${missing[0]} has not been uploaded${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ""}. Upload it with PUT /v1/contexts/<digest> first.`,
      { missing },
    );
  }
  // The runner is told the declared size; it must be the uploaded tarball's, not whatever the client claims.
  const wrong = declared.find((d) => sizes.get(d.digest) !== d.sizeBytes);
  if (wrong) {
    const storedBytes = sizes.get(wrong.digest)!;
    throw new ApiError(
      422,
      "context_size_mismatch",
      `Build context ${wrong.digest} is ${storedBytes} bytes as uploaded, but the layer declares ${wrong.sizeBytes}. Declare the tarball's exact size in bytes.`,
      { digest: wrong.digest, declaredBytes: wrong.sizeBytes, storedBytes },
    );
  }
}
