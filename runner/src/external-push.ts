/**
 * Copies a finished image from the built-in registry to an external one over the OCI
 * distribution API (decision 0019): every layer blob streamed through the runner (HEAD first:
 * blobs the target has are skipped; a cross-repository mount cannot cross registries), the
 * config rewritten with the submission's labels, the manifest with its annotations, and for a
 * multi-platform image each platform's manifest and then the index. The labels and
 * annotations change the config and manifest digests, so the digest reported is the one
 * computed here, and only after the target answered it back for the tag.
 */
import { createHash } from "node:crypto";
import type { JobPush } from "@kiln-build/protocol";
import { parsePushReference } from "@kiln-build/protocol";
import { z } from "zod";
import type { RegistryLogin } from "./registry-auth.ts";
import { RegistrySession, type RegistrySessionOptions } from "./registry-client.ts";

const INDEX_TYPES = new Set(["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]);
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

const Descriptor = z.object({ mediaType: z.string().optional(), digest: z.string(), size: z.number().int().nonnegative() }).loose();
const ImageManifest = z.object({ mediaType: z.string().optional(), config: Descriptor, layers: z.array(Descriptor) }).loose();
const ImageIndex = z.object({ mediaType: z.string().optional(), manifests: z.array(Descriptor) }).loose();
const ImageConfig = z.object({ config: z.record(z.string(), z.unknown()).nullable().optional() }).loose();

/** Where to copy from: the built-in registry's reference (pinned by digest) and the job's login there. */
export type PushSource = { reference: string; session: RegistrySessionOptions };

/** One target's copy: its reference, login, and how to reach it. */
export type PushDestination = { reference: string; login: RegistryLogin | null; insecure: boolean };

/** Options shared by every copy of one job. */
export type CopyOptions = { fetch?: typeof fetch; signal?: AbortSignal; log?: (line: string) => void };

/** Copies `source` to `destination` with the push's labels and annotations; resolves to the verified digest. */
export async function copyImage(
  source: PushSource,
  destination: PushDestination,
  push: JobPush,
  options: CopyOptions = {},
): Promise<string> {
  const parts = parsePushReference(destination.reference);
  if ("error" in parts) throw new Error(`push target ${destination.reference}: ${parts.error}`);
  const src = new RegistrySession(source.reference, { ...source.session, ...sessionOptions(options) });
  const dst = new RegistrySession(`${parts.host}/${parts.repository}:${parts.tag}`, {
    login: destination.login,
    insecure: destination.insecure,
    ...sessionOptions(options),
  });
  const top = await src.manifest(refOf(source.reference));
  const json = JSON.parse(top.bytes.toString("utf8")) as unknown;
  const mediaType = top.mediaType?.split(";")[0]?.trim() || (json as { mediaType?: string }).mediaType || OCI_MANIFEST;
  let pushed: { bytes: Buffer; mediaType: string };
  if (INDEX_TYPES.has(mediaType)) {
    const index = ImageIndex.parse(json);
    const manifests = [];
    for (const child of index.manifests) {
      const fetched = await src.manifest(child.digest);
      const copied = await copyManifest(src, dst, fetched.bytes, child.mediaType ?? OCI_MANIFEST, push, options);
      await dst.putManifest(copied.digest, copied.bytes, copied.mediaType);
      manifests.push({ ...child, digest: copied.digest, size: copied.bytes.length });
    }
    const annotations = { ...(index.annotations as Record<string, string> | undefined), ...push.annotations };
    pushed = { bytes: Buffer.from(JSON.stringify({ ...index, manifests, annotations })), mediaType };
  } else {
    pushed = await copyManifest(src, dst, top.bytes, mediaType, push, options);
  }
  const digest = await dst.putManifest(parts.tag, pushed.bytes, pushed.mediaType);
  // Verified by reading the tag back: the target must serve exactly the bytes computed here.
  const readBack = await dst.manifest(parts.tag);
  if (readBack.digest !== digest) throw new Error(`the target serves ${readBack.digest} for tag ${parts.tag}, not the pushed ${digest}`);
  return digest;
}

/** One platform's image: layers copied, the config relabelled, the manifest annotated (not yet stored). */
async function copyManifest(
  src: RegistrySession,
  dst: RegistrySession,
  bytes: Buffer,
  mediaType: string,
  push: JobPush,
  options: CopyOptions,
): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
  const manifest = ImageManifest.parse(JSON.parse(bytes.toString("utf8")));
  for (const layer of manifest.layers) await copyBlob(src, dst, layer, options);
  const configResponse = await src.blob(manifest.config.digest);
  const config = ImageConfig.parse(JSON.parse(Buffer.from(await configResponse.arrayBuffer()).toString("utf8")));
  const labelled = Object.keys(push.labels).length
    ? {
        ...config,
        config: { ...config.config, Labels: { ...(config.config?.Labels as Record<string, string> | undefined), ...push.labels } },
      }
    : config;
  const configBytes = Buffer.from(JSON.stringify(labelled));
  const configDigest = await dst.putBlob(configBytes);
  const annotations = { ...(manifest.annotations as Record<string, string> | undefined), ...push.annotations };
  const out = Buffer.from(
    JSON.stringify({ ...manifest, config: { ...manifest.config, digest: configDigest, size: configBytes.length }, annotations }),
  );
  return { bytes: out, mediaType, digest: `sha256:${createHash("sha256").update(out).digest("hex")}` };
}

async function copyBlob(src: RegistrySession, dst: RegistrySession, blob: z.infer<typeof Descriptor>, options: CopyOptions): Promise<void> {
  if (await dst.hasBlob(blob.digest)) {
    options.log?.(`  ${blob.digest.slice(7, 19)}: already there`);
    return;
  }
  const response = await src.blob(blob.digest);
  await dst.putBlobStream(blob.digest, blob.size, response.body!);
  options.log?.(`  ${blob.digest.slice(7, 19)}: copied (${blob.size} bytes)`);
}

function sessionOptions(options: CopyOptions): RegistrySessionOptions {
  return { ...(options.fetch ? { fetch: options.fetch } : {}), ...(options.signal ? { signal: options.signal } : {}) };
}

// The digest (or tag) a reference names.
function refOf(reference: string): string {
  const at = reference.indexOf("@");
  if (at >= 0) return reference.slice(at + 1);
  const colon = reference.lastIndexOf(":");
  return colon > reference.lastIndexOf("/") ? reference.slice(colon + 1) : "latest";
}
