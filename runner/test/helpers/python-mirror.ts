/**
 * A local python-build-standalone mirror for tests (no internet): serves a small fake
 * `install_only` archive whose `python/bin/python3` is a shell script, with its published
 * sha256, and counts requests so tests can prove the cache works.
 */
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";

/** A running mirror. */
export type PythonMirror = { url: string; requests: string[]; files: Map<string, Buffer>; close(): Promise<void> };

/** A gzipped install_only-shaped archive whose interpreter prints `output`. */
export async function fakePythonArchive(version: string, output = `Python ${version} (kiln test build)`): Promise<Buffer> {
  const minor = version.split(".").slice(0, 2).join(".");
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of p) chunks.push(chunk as Buffer);
  })();
  const add = (header: Parameters<typeof p.entry>[0], body?: string) =>
    new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body === undefined) p.entry(header, cb);
      else p.entry(header, body, cb);
    });
  await add({ name: "python/", type: "directory", mode: 0o755 });
  await add({ name: "python/bin/", type: "directory", mode: 0o755 });
  await add({ name: `python/bin/python${minor}`, mode: 0o755 }, `#!/bin/sh\necho "${output}"\n`);
  await add({ name: "python/bin/python3", type: "symlink", linkname: `python${minor}` });
  await add({ name: `python/lib/python${minor}/os.py`, mode: 0o644 }, "# stdlib stand-in\n");
  p.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** Serves `files` (path -> bytes) over HTTP on 127.0.0.1. */
export async function startPythonMirror(files: Map<string, Buffer>): Promise<PythonMirror> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? "");
    const body = files.get(decodeURIComponent(req.url ?? ""));
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/releases/download`,
    requests,
    files,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Mirror files for one release: the archive and its `.sha256`. */
export function releaseFiles(
  release: string,
  asset: string,
  archive: Buffer,
  options: { sums?: boolean; checksum?: string } = {},
): Map<string, Buffer> {
  const sha = options.checksum ?? createHash("sha256").update(archive).digest("hex");
  const files = new Map<string, Buffer>([[`/releases/download/${release}/${asset}`, archive]]);
  if (options.sums)
    files.set(`/releases/download/${release}/SHA256SUMS`, Buffer.from(`${"0".repeat(64)}  other.tar.gz\n${sha}  ${asset}\n`));
  else files.set(`/releases/download/${release}/${asset}.sha256`, Buffer.from(`${sha}\n`));
  return files;
}
