/**
 * Which platforms a workspace can build: those its enabled fleets (own and shared) build
 * natively or by emulation. A chain for a platform no fleet offers is refused at submission
 * (422 `platform_unavailable`), and the SDK asks `GET /v1/platforms` before it uploads anything.
 */
import { offeredPlatforms, PLATFORMS, type PlatformsView, platformUnavailableMessage } from "@kiln-build/protocol";
import { ApiError } from "../errors.ts";
import { listDispatchableFleets } from "../fleets.ts";

/** The platforms the workspace's enabled fleets offer, with how many build each natively and by emulation. */
export async function workspacePlatforms(env: Env, workspaceId: string): Promise<PlatformsView["platforms"]> {
  const fleets = (await listDispatchableFleets(env, workspaceId)).filter((f) => f.maxConcurrentBuilds > 0);
  return PLATFORMS.map((platform) => ({
    platform,
    nativeFleets: fleets.filter((f) => (f.platforms.native as readonly string[]).includes(platform)).length,
    emulatingFleets: fleets.filter((f) => (f.platforms.emulated as readonly string[]).includes(platform)).length,
  })).filter((p) => p.nativeFleets + p.emulatingFleets > 0);
}

/** Throws 422 `platform_unavailable` (naming the platforms offered) unless some enabled fleet builds `platform`. */
export async function checkPlatformOffered(env: Env, workspaceId: string, platform: string): Promise<void> {
  const fleets = (await listDispatchableFleets(env, workspaceId)).filter((f) => f.maxConcurrentBuilds > 0);
  const offered = offeredPlatforms(fleets);
  if ((offered as readonly string[]).includes(platform)) return;
  throw new ApiError(422, "platform_unavailable", platformUnavailableMessage([platform], offered), { platforms: [platform], offered });
}
