// Shared set-up of the multi-platform tag, push, delete and page tests: a tenant whose fleet
// builds amd64 natively and arm64 by emulation, and a two-platform index built to success as a
// runner would (each platform's config declares its platform, as the index assembly checks).
import { env, SELF } from "cloudflare:test";
import type { Job, LayerSpec } from "@kiln-build/protocol";
import { db, findManifest, manifestObjectKey, recordBlob } from "../../workers/registry/store.ts";
import { apiJson, chain, completeJob, newFleet, newTenant, nthJob, ORIGIN, settle, submitImage, type TestFleet } from "./helpers.ts";

const EMULATES_ARM: { native: ["linux/amd64"]; emulated: ["linux/arm64"] } = { native: ["linux/amd64"], emulated: ["linux/arm64"] };
const PLATFORMS = ["linux/amd64", "linux/arm64"] as const;

/** An OCI request's `Accept` for manifests and indexes. */
export const MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/** A registry API request (`/v2/...`) with the token as basic auth. */
export function registry(path: string, token: string | null, method = "GET"): Promise<Response> {
  return SELF.fetch(`${ORIGIN}/v2/${path}`, {
    method,
    headers: { ...(token ? { authorization: `Basic ${btoa(`x:${token}`)}` } : {}), accept: MANIFEST_ACCEPT },
  });
}

/** A tenant whose own fleet builds both platforms; `trustedWithSecrets` for push logins. */
export async function platformTenant(options: { trustedWithSecrets?: boolean } = {}) {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId, { platforms: EMULATES_ARM, trustedWithSecrets: options.trustedWithSecrets ?? false });
  return { ...t, fleet, jobs: 0 };
}

/** A tenant of `platformTenant`. */
export type PlatformTenant = Awaited<ReturnType<typeof platformTenant>>;

/** Submits one chain per platform (not yet built) and the index grouping them, with `extra` (tag, push). */
export async function submitIndex(t: PlatformTenant, extra: Record<string, unknown> = {}) {
  const seed = chain(2);
  const submitted = [];
  for (const platform of PLATFORMS)
    submitted.push(
      await submitImage(
        t.token,
        seed.map((l: LayerSpec) => ({ ...l, platform })),
      ),
    );
  const images = submitted.map((s, i) => ({ platform: PLATFORMS[i]!, imageId: s.body.id as string }));
  const created = await apiJson("POST", "/v1/image-indexes", { token: t.token, json: { images, ...extra } });
  return { created, submitted, images };
}

/** Builds every platform of a submitted index as a runner would; returns the index's view once read (assembled). */
export async function completeIndex(t: PlatformTenant, index: Awaited<ReturnType<typeof submitIndex>>) {
  await buildPlatforms(t, index);
  return apiJson("GET", `/v1/image-indexes/${index.created.body.id}`, { token: t.token });
}

/** Builds every platform of a submitted index as a runner would, each build's outbox delivered (nobody reads the index). */
export async function buildPlatforms(t: PlatformTenant, index: Awaited<ReturnType<typeof submitIndex>>): Promise<void> {
  for (const [i, s] of index.submitted.entries()) {
    await settle(s.body.buildId);
    const job = await nthJob(t.fleet, ++t.jobs);
    // The platform is in the image's config before the build ends, as a real runner's image has it.
    await completeJob(t.fleet, job, "", () => declarePlatform(job, t.workspaceId, PLATFORMS[i]!));
    await settle(s.body.buildId);
  }
}

/** The next job dispatched to the tenant's fleet. */
export function nextJob(t: PlatformTenant): Promise<Job> {
  return nthJob(t.fleet as TestFleet, ++t.jobs);
}

// The fake layer images of `completeJob` have config blobs the registry does not hold: store one declaring `platform`.
async function declarePlatform(job: Job, workspaceId: string, platform: string): Promise<void> {
  const top = job.layers.at(-1)!;
  const repo = top.target.slice(top.target.indexOf("/") + 1, top.target.lastIndexOf(":"));
  const [os, architecture] = platform.split("/");
  const row = await findManifest(db(env), repo, top.key);
  const manifest = await (await env.REGISTRY.get(manifestObjectKey(row!.digest)))!.text();
  const configDigest = (JSON.parse(manifest) as { config: { digest: string } }).config.digest;
  const key = `test-config/${configDigest}`;
  await env.REGISTRY.put(key, JSON.stringify({ os, architecture }));
  await recordBlob(db(env), repo, workspaceId, configDigest, 40, key, Date.now());
}
