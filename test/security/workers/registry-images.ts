// Images in the built-in registry at a chosen digest, written straight into D1 and R2 (the
// bytes are not the digest's content): for tests that only need the registry to hold "some
// image" for a layer at a fixed fake digest, such as test/workers/helpers.ts `completeJob`'s
// `digestFor` digests, now that the orchestrator believes a runner's layer result only when
// the registry holds it (durable-objects/report-verify.ts).
import { env } from "cloudflare:test";
import type { Job, JobLayer } from "@kiln-build/protocol";
import { digestOfBytes } from "@kiln-build/protocol";
import { OCI_MANIFEST, parseManifest } from "../../../workers/registry/manifest.ts";
import { db, findManifest, manifestObjectKey, storeManifest } from "../../../workers/registry/store.ts";

const enc = new TextEncoder();

/** `<host>/<repo>[:tag|@digest]` → repository path and reference. */
export function splitReference(reference: string): { repo: string; ref: string } {
  const rest = reference.slice(reference.indexOf("/") + 1);
  const at = rest.indexOf("@");
  if (at >= 0) return { repo: rest.slice(0, at), ref: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(":");
  return { repo: rest.slice(0, colon), ref: rest.slice(colon + 1) };
}

/** The image a layer of `job` builds on: the job's parent for its first layer, else the layer before it (by its target tag). */
export function parentOf(job: Job, layer: JobLayer): string | null {
  const i = job.layers.findIndex((l) => l.key === layer.key);
  return i === 0 ? job.parentReference : job.layers[i - 1]!.target;
}

/**
 * Makes the registry hold an image for `layer` of `job` at `digest` (any digest: the bytes are
 * not its content), extending its parent's layers as a real push would, tagged with the
 * layer's target tag. For tests that report fixed fake digests.
 */
export async function registerLayerImage(job: Job, layer: JobLayer, digest: string): Promise<void> {
  const d = db(env);
  const { repo, ref: tag } = splitReference(layer.target);
  const parent = parentOf(job, layer);
  let below: { digest: string; size: number }[] = [];
  if (parent !== null) {
    const at = splitReference(parent);
    const row = await findManifest(d, at.repo, at.ref);
    const stored = row && (await env.REGISTRY.get(manifestObjectKey(row.digest)));
    if (stored) below = ((await stored.json()) as { layers: { digest: string; size: number }[] }).layers;
  }
  const hash = async (text: string) => digestOfBytes(await crypto.subtle.digest("SHA-256", enc.encode(text)));
  const own = await hash(`layer ${layer.key}/${digest}`);
  const config = await hash(`config ${layer.key}/${digest}`);
  const bytes = enc.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config, size: 2 },
      layers: [...below, { digest: own, size: 10 }].map((l) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: l.digest,
        size: l.size,
      })),
    }),
  );
  const parsed = parseManifest(bytes, OCI_MANIFEST);
  if (!parsed.ok) throw new Error(parsed.message);
  await env.REGISTRY.put(manifestObjectKey(digest), bytes);
  await storeManifest(d, repo, job.workspaceId, digest, bytes.byteLength, parsed.manifest, tag, Date.now());
}
