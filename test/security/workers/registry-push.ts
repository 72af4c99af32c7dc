// Registry helpers for the security tests: requests to the built-in registry through the
// Worker's own fetch, monolithic blob pushes and OCI image manifests.
import { SELF } from "cloudflare:test";
import { ORIGIN } from "../../workers/helpers.ts";
import { sha256Digest } from "../../workers/periphery-helpers.ts";

/** `Authorization: Basic` for `user:password`. */
export const basic = (password: string, user = "x") => `Basic ${btoa(`${user}:${password}`)}`;

/** A registry request with `auth` (null: anonymous). */
export function registry(method: string, path: string, auth: string | null, body?: Uint8Array, headers: Record<string, string> = {}) {
  return SELF.fetch(`${ORIGIN}${path}`, {
    method,
    headers: { ...(auth ? { authorization: auth } : {}), ...(body ? { "content-length": String(body.byteLength) } : {}), ...headers },
    body,
  });
}

/** Pushes `data` to `repo` in one request; returns the response and the digest. */
export async function pushBlob(repo: string, auth: string, data: Uint8Array): Promise<{ status: number; digest: string }> {
  const digest = await sha256Digest(data);
  const response = await registry("POST", `/v2/${repo}/blobs/uploads/?digest=${digest}`, auth, data);
  await response.body?.cancel();
  return { status: response.status, digest };
}

/** An OCI image manifest over a config and one layer blob, both already in the repository. */
export function manifestOf(config: { digest: string; size: number }, layer: { digest: string; size: number }): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
    }),
  );
}

/** PUT of `manifest` under `reference`; returns the status. */
export async function putManifest(repo: string, reference: string, auth: string, manifest: Uint8Array): Promise<number> {
  const response = await registry("PUT", `/v2/${repo}/manifests/${reference}`, auth, manifest, {
    "content-type": "application/vnd.oci.image.manifest.v1+json",
  });
  await response.body?.cancel();
  return response.status;
}

/** Pushes a small image (config, one layer, manifest) to `repo:tag` with `auth`; returns its blobs and manifest. */
export async function pushImage(repo: string, tag: string, auth: string, seed: string) {
  const configBytes = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", seed }));
  const layerBytes = new TextEncoder().encode(`layer ${seed}`);
  const config = await pushBlob(repo, auth, configBytes);
  const layer = await pushBlob(repo, auth, layerBytes);
  if (config.status !== 201 || layer.status !== 201) throw new Error(`blob push to ${repo}: ${config.status} ${layer.status}`);
  const manifest = manifestOf(
    { digest: config.digest, size: configBytes.byteLength },
    { digest: layer.digest, size: layerBytes.byteLength },
  );
  const status = await putManifest(repo, tag, auth, manifest);
  if (status !== 201) throw new Error(`manifest push to ${repo}:${tag}: ${status}`);
  return { config, layer, manifest, configSize: configBytes.byteLength, layerSize: layerBytes.byteLength };
}
