/**
 * Looks inside pushed images with skopeo: the manifest digest the registry serves, the
 * image config, and every file of every layer (decompressed), so tests can prove what an
 * image does and does not contain.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { extract } from "tar-stream";

const exec = promisify(execFile);

/** The manifest digest the registry serves for `reference`. */
export async function registryDigest(reference: string): Promise<string> {
  const { stdout } = await exec("skopeo", ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", `docker://${reference}`]);
  return stdout.trim();
}

/** The raw image config JSON (Env, WorkingDir, history, ...). */
export async function imageConfig(
  reference: string,
): Promise<{ text: string; json: { config?: { Env?: string[]; WorkingDir?: string }; history?: { created_by?: string }[] } }> {
  const { stdout } = await exec("skopeo", ["inspect", "--tls-verify=false", "--config", "--raw", `docker://${reference}`], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return { text: stdout, json: JSON.parse(stdout) };
}

/** Every layer's files (last writer wins) and all blobs decompressed, for searching. */
export type ImageContents = { files: Map<string, { type: string; data: Buffer }>; blobs: Buffer[] };

/** Copies `reference` to an OCI layout and reads every layer. */
export async function imageContents(reference: string): Promise<ImageContents> {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-inspect-"));
  try {
    await exec("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${reference}`, `oci:${dir}:image`], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const index = JSON.parse(await readFile(path.join(dir, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    const blob = (digest: string) => readFile(path.join(dir, "blobs", ...digest.split(":")));
    const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString()) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    const files = new Map<string, { type: string; data: Buffer }>();
    const blobs: Buffer[] = [await blob(manifest.config.digest)];
    for (const layer of manifest.layers) {
      const raw = await blob(layer.digest);
      const tar = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
      blobs.push(tar);
      const ex = extract();
      Readable.from([tar]).pipe(ex);
      for await (const entry of ex) {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        files.set(`/${entry.header.name.replace(/^\.?\//, "").replace(/\/$/, "")}`, {
          type: entry.header.type,
          data: Buffer.concat(chunks),
        });
      }
    }
    return { files, blobs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
