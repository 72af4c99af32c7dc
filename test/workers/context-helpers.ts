/**
 * Uploading per-file contexts (decision 0022) through the Worker's own routes, for tests:
 * blobs in one batch, then the manifest.
 */

import { SELF } from "cloudflare:test";
import { type ContextManifestEntry, digestOfBytes, encodeBlobBatch, encodeContextManifest } from "@kiln-build/protocol";
import { ORIGIN } from "./helpers.ts";

/** A context of files (path → text), as the SDK would describe it. */
export type TestContext = { digest: string; sizeBytes: number; manifestBytes: Uint8Array; blobs: Map<string, Uint8Array> };

/** The manifest and blobs of `files` (parents listed as directories, sorted). */
export async function testContext(files: Record<string, string>): Promise<TestContext> {
  const entries: ContextManifestEntry[] = [];
  const blobs = new Map<string, Uint8Array>();
  for (const [p, text] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const bytes = new TextEncoder().encode(text);
    const sha256 = digestOfBytes(await crypto.subtle.digest("SHA-256", bytes));
    blobs.set(sha256, bytes);
    entries.push({ path: p, type: "file", mode: 0o644, size: bytes.byteLength, sha256 });
  }
  const { bytes, digest } = await encodeContextManifest({ version: 1, entries });
  return { digest, sizeBytes: bytes.byteLength, manifestBytes: bytes, blobs };
}

/** PUTs the manifest; answers the status and the blobs the server says are missing. */
export async function putManifest(token: string, context: TestContext): Promise<{ status: number; missing: string[] }> {
  const response = await SELF.fetch(`${ORIGIN}/v1/contexts/manifests/${context.digest}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: context.manifestBytes,
  });
  const body = (await response.json()) as { missing?: string[] };
  return { status: response.status, missing: body.missing ?? [] };
}

/** Uploads `blobs` (digest → bytes) in one batch; answers the status. */
export async function postBlobs(token: string, blobs: ReadonlyMap<string, Uint8Array>): Promise<number> {
  const body = encodeBlobBatch([...blobs].map(([digest, bytes]) => ({ digest, bytes })));
  const response = await SELF.fetch(`${ORIGIN}/v1/contexts/blobs`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/vnd.kiln.blob-batch" },
    body,
  });
  await response.body?.cancel();
  return response.status;
}

/** Uploads every blob and the manifest of `files`; returns the context. */
export async function uploadTestContext(token: string, files: Record<string, string>): Promise<TestContext> {
  const context = await testContext(files);
  const put = await putManifest(token, context);
  if (put.status !== 201) throw new Error(`manifest put answered ${put.status}`);
  if ((await postBlobs(token, context.blobs)) !== 201) throw new Error("blob batch failed");
  return context;
}
