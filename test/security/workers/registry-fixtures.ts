// Layer images pushed as an honest runner does, through /v2 with the job's own token: a new
// layer on top of its parent's layers (`pushLayerImage`), and a whole job built and reported
// that way (`buildHonestly`). For a fixed fake digest, see registry-images.ts.
import { SELF } from "cloudflare:test";
import type { Job, JobLayer } from "@kiln-build/protocol";
import { digestOfBytes } from "@kiln-build/protocol";
import { OCI_MANIFEST } from "../../../workers/registry/manifest.ts";
import { ORIGIN, sendEvent, type TestFleet } from "../../workers/helpers.ts";
import { parentOf, splitReference } from "./registry-images.ts";

export { splitReference } from "./registry-images.ts";

const enc = new TextEncoder();
const basic = (token: string) => `Basic ${btoa(`kiln-job:${token}`)}`;

async function sha256(bytes: Uint8Array): Promise<string> {
  return digestOfBytes(await crypto.subtle.digest("SHA-256", bytes));
}

/** A layer descriptor's digest and size. */
export type LayerBlob = { digest: string; size: number };

/** The layers of a manifest the registry holds (read with the job's token), or [] for none. */
export async function registryLayers(reference: string | null, token: string): Promise<LayerBlob[]> {
  if (reference === null) return [];
  const { repo, ref } = splitReference(reference);
  const response = await SELF.fetch(`${ORIGIN}/v2/${repo}/manifests/${ref}`, {
    headers: { authorization: basic(token), accept: OCI_MANIFEST },
  });
  if (!response.ok) throw new Error(`GET manifest ${reference}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { layers: LayerBlob[] }).layers.map((l) => ({ digest: l.digest, size: l.size }));
}

async function pushBlob(repo: string, token: string, data: Uint8Array): Promise<string> {
  const digest = await sha256(data);
  const response = await SELF.fetch(`${ORIGIN}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    headers: { authorization: basic(token), "content-length": String(data.byteLength) },
    body: data,
  });
  if (response.status !== 201) throw new Error(`push blob to ${repo}: ${response.status} ${await response.text()}`);
  return digest;
}

/**
 * Pushes `layer` of `job` to its target as a runner would: its parent's layers plus one of its
 * own (`parentLayers` replaces the parent's, to push an image that does not extend it).
 */
export async function pushLayerImage(
  job: Job,
  layer: JobLayer,
  options: { parentLayers?: LayerBlob[]; seed?: string; repo?: string; tag?: string } = {},
): Promise<{ digest: string; sizeBytes: number }> {
  const token = job.registry.credentials!.password;
  const target = splitReference(layer.target);
  const repo = options.repo ?? target.repo;
  const below = options.parentLayers ?? (await registryLayers(parentOf(job, layer), token));
  const seed = options.seed ?? `${layer.key}-${Date.now()}-${Math.random()}`;
  const data = enc.encode(`layer ${seed}`);
  const own = { digest: await pushBlob(repo, token, data), size: data.byteLength };
  const config = enc.encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers" }, seed }));
  const configDigest = await pushBlob(repo, token, config);
  const manifest = enc.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.byteLength },
      layers: [...below, own].map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...l })),
    }),
  );
  const response = await SELF.fetch(`${ORIGIN}/v2/${repo}/manifests/${options.tag ?? target.ref}`, {
    method: "PUT",
    headers: { authorization: basic(token), "content-type": OCI_MANIFEST },
    body: manifest,
  });
  if (response.status !== 201) throw new Error(`push manifest ${layer.target}: ${response.status} ${await response.text()}`);
  return { digest: await sha256(manifest), sizeBytes: manifest.byteLength };
}

/** Pushes and reports every layer of `job` and its success, as an honest runner does; the digests by layer key. */
export async function buildHonestly(fleet: TestFleet, job: Job): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  for (const e of [{ type: "accepted" }, { type: "started" }] as const) expectOk(await sendEvent(fleet, job, e));
  for (const layer of job.layers) {
    const { digest, sizeBytes } = await pushLayerImage(job, layer);
    expectOk(await sendEvent(fleet, job, { type: "layer_succeeded", layerKey: layer.key, digest, sizeBytes, reference: layer.target }));
    digests.set(layer.key, digest);
  }
  expectOk(await sendEvent(fleet, job, { type: "succeeded" }));
  return digests;
}

function expectOk(result: { status: number; body: any }): void {
  if (result.status !== 200 || result.body.cancel) throw new Error(`runner event refused: ${result.status} ${JSON.stringify(result.body)}`);
}
