/**
 * The registry half of a bench that plays the runner: before it reports `layer_succeeded`, it
 * pushes a real tiny image for the layer through the Worker's `/v2` API with the job's own
 * registry credentials, as the runner does (the orchestrator believes a layer result only when
 * the registry holds the manifest under the job's target repository and its layers extend the
 * parent layer's: durable-objects/report-verify.ts). The image is a small config, the parent's
 * layer descriptors, and one new small layer; the bench then reports the manifest's digest.
 * The same as test/security/workers/registry-fixtures.ts `pushLayerImage`, over HTTP.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Job } from "@kiln-build/protocol";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";

/** What of a dispatched job pushing its layers needs. */
export type PushJob = Pick<Job, "parentReference" | "registry"> & { layers: { key: string; index: number; target: string }[] };

/** A layer descriptor's digest and size. */
type LayerBlob = { digest: string; size: number };

/** The manifest pushed for a layer: its digest and size, what `layer_succeeded` reports. */
export type PushedLayer = { digest: string; sizeBytes: number };

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const enc = new TextEncoder();

/** `<host>/<repo>[:tag|@digest]` → repository path and reference. */
function splitReference(reference: string): { repo: string; ref: string } {
  const rest = reference.slice(reference.indexOf("/") + 1);
  const at = rest.indexOf("@");
  if (at >= 0) return { repo: rest.slice(0, at), ref: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(":");
  return { repo: rest.slice(0, colon), ref: rest.slice(colon + 1) };
}

/**
 * A pusher for the layers of `job` against the Worker at `origin`: `push(layer)` pushes the
 * layer's image to its target and returns the manifest to report. Layers are pushed in chain
 * order (each extends the one pushed before it; the first extends `job.parentReference`).
 * `headers` go on every request (the load bench sets the runner's `cf-connecting-ip`); a spent
 * request budget (429) is waited out and the request sent again, like a registry client does.
 */
export function layerPusher(origin: string, job: PushJob, headers: Record<string, string> = {}) {
  const { username, password } = job.registry.credentials;
  const authorization = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  const pushed = new Map<string, LayerBlob[]>();

  async function send(method: string, route: string, init: { body?: Uint8Array; headers?: Record<string, string> } = {}) {
    for (;;) {
      const response = await fetch(`${origin}${route}`, {
        method,
        headers: { ...headers, authorization, ...init.headers },
        body: init.body,
      });
      if (response.status !== 429) return response;
      await response.arrayBuffer();
      await sleep(Number(response.headers.get("retry-after") ?? 1) * 1000);
    }
  }

  async function pushBlob(repo: string, data: Uint8Array): Promise<LayerBlob> {
    const digest = sha256(data);
    const response = await send("POST", `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      body: data,
      headers: { "content-type": "application/octet-stream" },
    });
    if (response.status !== 201) throw new Error(`push blob to ${repo}: ${response.status} ${await response.text()}`);
    await response.arrayBuffer();
    return { digest, size: data.byteLength };
  }

  // The layers of the image `layer` builds on: the layer pushed before it, or the job's parent (read from the registry).
  async function parentLayers(layer: { key: string }): Promise<LayerBlob[]> {
    const i = job.layers.findIndex((l) => l.key === layer.key);
    if (i < 0) throw new Error(`layer ${layer.key} is not in the job`);
    if (i > 0) {
      const below = pushed.get(job.layers[i - 1]!.key);
      if (!below) throw new Error(`layer ${layer.key} pushed before the layer below it`);
      return below;
    }
    if (job.parentReference === null) return [];
    const { repo, ref } = splitReference(job.parentReference);
    const response = await send("GET", `/v2/${repo}/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
    if (!response.ok) throw new Error(`GET parent manifest ${job.parentReference}: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { layers: LayerBlob[] }).layers.map((l) => ({ digest: l.digest, size: l.size }));
  }

  return async function push(layer: { key: string; target: string }): Promise<PushedLayer> {
    const { repo, ref } = splitReference(layer.target);
    const below = await parentLayers(layer);
    const seed = `${layer.key} ${Date.now()} ${Math.random()}`;
    const own = await pushBlob(repo, enc.encode(`layer ${seed}`));
    const config = enc.encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers" }, seed }));
    const configBlob = await pushBlob(repo, config);
    const layers = [...below, own];
    const manifest = enc.encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, ...configBlob },
        layers: layers.map((l) => ({ mediaType: OCI_LAYER, ...l })),
      }),
    );
    const response = await send("PUT", `/v2/${repo}/manifests/${ref}`, { body: manifest, headers: { "content-type": OCI_MANIFEST } });
    if (response.status !== 201) throw new Error(`push manifest ${layer.target}: ${response.status} ${await response.text()}`);
    await response.arrayBuffer();
    pushed.set(layer.key, layers);
    return { digest: sha256(manifest), sizeBytes: manifest.byteLength };
  };
}

/**
 * The `layer_succeeded` event of every layer of `job`, each sent (by `report`) right after its
 * image is pushed, in chain order, as the runner reports them.
 */
export async function pushAndReportLayers(
  origin: string,
  job: PushJob,
  report: (event: Record<string, unknown> & { type: "layer_succeeded" }) => Promise<void>,
  headers: Record<string, string> = {},
): Promise<void> {
  const push = layerPusher(origin, job, headers);
  for (const layer of job.layers) {
    const { digest, sizeBytes } = await push(layer);
    await report({ type: "layer_succeeded", layerKey: layer.key, digest, sizeBytes, reference: layer.target });
  }
}
