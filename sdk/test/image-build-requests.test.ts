// How many requests image.build() makes, against a scripted server (the client's injectable
// fetch): a cached image is one request; a submission told which contexts are missing uploads
// exactly those and submits again; a context of a cached layer is never uploaded.

import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { computeChainKeys, decodeBlobBatch, decodeContextManifest, manifestBlobs } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { KilnClient } from "../src/client.ts";
import { Image } from "../src/image.ts";

type Call = { method: string; path: string };

/** A server that has every context in `stored` and builds an image at once when they are all there. */
function server(stored: Set<string>, contextsOf: (body: any) => string[]) {
  const calls: Call[] = [];
  const fetch = (async (input: URL | string, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? "GET";
    calls.push({ method, path: decodeURIComponent(url.pathname) });
    const json = (status: number, body: unknown) =>
      new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "x-request-id": "req-1" } });
    if (method === "PUT" && url.pathname.startsWith("/v1/contexts/manifests/")) {
      const manifest = decodeContextManifest(new Uint8Array(await new Response(init?.body).arrayBuffer()))!;
      stored.add(decodeURIComponent(url.pathname.split("/").at(-1)!));
      return json(201, { missing: manifestBlobs(manifest).flatMap((b) => (stored.has(b.digest) ? [] : [b.digest])) });
    }
    if (method === "POST" && url.pathname === "/v1/contexts/blobs") {
      const batch = decodeBlobBatch(new Uint8Array(await new Response(init?.body).arrayBuffer()));
      if (!batch.ok) return json(400, { error: { code: "invalid_batch", message: batch.message } });
      for (const blob of batch.blobs) stored.add(blob.digest);
      return json(201, { stored: [] });
    }
    if (method === "PUT" && url.pathname.startsWith("/v1/contexts/")) {
      // Drain the streamed tarball as a real server would.
      await new Response(init?.body as ReadableStream).arrayBuffer();
      stored.add(decodeURIComponent(url.pathname.split("/").at(-1)!));
      return json(201, {});
    }
    if (method === "POST" && url.pathname === "/v1/images") {
      const body = JSON.parse(String(init?.body));
      const missing = contextsOf(body).filter((d) => !stored.has(d));
      if (missing.length) return json(422, { error: { code: "context_not_found", message: "missing", details: { missing } } });
      const keys = await computeChainKeys({ builderVersion: body.builderVersion, layers: body.layers });
      const layers = keys.map((key, index) => ({
        index,
        key,
        status: "succeeded",
        cached: true,
        digest: `sha256:${"a".repeat(64)}`,
        reference: `kiln.test/ws/layers:${key}`,
        sizeBytes: 1,
        buildId: null,
      }));
      return json(200, { id: "im-1", status: "succeeded", buildId: null, layers });
    }
    return json(404, { error: { code: "not_found", message: `${method} ${url.pathname}` } });
  }) as typeof globalThis.fetch;
  return { client: new KilnClient({ serverUrl: "http://kiln.test", token: "kiln_api_t", fetch, maxRetries: 0 }), calls };
}

function withFile(): { image: Image; dir: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-requests-"));
  writeFileSync(path.join(dir, "app.py"), "print('hi')\n");
  const image = Image.fromRegistry("busybox").addLocalFile(path.join(dir, "app.py"), "/app/app.py", { copy: true }).runCommands("true");
  return { image, dir };
}

const everyContext = (body: any): string[] => body.layers.flatMap((l: any) => (l.context ? [l.context.digest] : []));

describe("image.build() requests", () => {
  it("builds an image the server already has with exactly one request", async () => {
    const { image } = withFile();
    const { layers } = await image.describe();
    const stored = new Set(layers.flatMap((l) => (l.context ? [l.context.digest] : [])));
    const { client, calls } = server(stored, everyContext);
    const built = await image.build({ client, logs: false });
    expect(calls).toEqual([{ method: "POST", path: "/v1/images" }]);
    expect(built.imageId).toBe("im-1");
    expect(built.uploadedBytes).toBe(0);
  });

  it("uploads exactly the contexts the submission names as missing, then submits again", async () => {
    const { image } = withFile();
    const { layers } = await image.describe();
    const digest = layers.find((l) => l.context)!.context!.digest;
    const { client, calls } = server(new Set(), everyContext);
    const built = await image.build({ client, logs: false });
    expect(calls).toEqual([
      { method: "POST", path: "/v1/images" },
      { method: "PUT", path: `/v1/contexts/manifests/${digest}` },
      { method: "POST", path: "/v1/contexts/blobs" },
      { method: "POST", path: "/v1/images" },
    ]);
    // The manifest plus the one file's bytes.
    expect(built.uploadedBytes).toBe(layers.find((l) => l.context)!.context!.sizeBytes + "print('hi')\n".length);
  });

  it("uploads nothing for a context the server does not ask for (its layer is cached)", async () => {
    const { image } = withFile();
    const { client, calls } = server(new Set(), () => []);
    await image.build({ client, logs: false });
    expect(calls.filter((c) => c.method === "PUT")).toEqual([]);
  });
});
