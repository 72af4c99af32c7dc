/**
 * Digests of unpinned base images (base-digests.ts) against Debian's `docker-registry`: the tag's
 * digest is taken only when the manifest's config is the image the build pulled (its local id),
 * an index is resolved to the build's platform, and the Dockerfile's unpinned pulls are found.
 */
import { createHash, randomBytes } from "node:crypto";
import type { JobLayer } from "@kiln-build/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryDigestOf, unpinnedBases } from "../src/base-digests.ts";
import { RegistrySession } from "../src/registry-client.ts";
import { startRegistry, type TestRegistry } from "./helpers/registry.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
let registry: TestRegistry;

beforeAll(async () => {
  registry = await startRegistry();
}, 60_000);

afterAll(async () => {
  await registry?.stop();
});

const sha = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

// An image whose config names `architecture`: its manifest digest and config digest (the local image id).
async function image(tag: string, architecture: string): Promise<{ digest: string; config: string; size: number }> {
  const session = new RegistrySession(`${registry.host}/base/img:${tag}`, { insecure: true });
  const layer = await session.putBlob(randomBytes(500));
  const config = Buffer.from(JSON.stringify({ architecture, os: "linux", rootfs: { type: "layers", diff_ids: [layer] } }));
  const configDigest = await session.putBlob(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layer, size: 500 }],
    }),
  );
  await session.putManifest(tag, manifest, OCI_MANIFEST);
  return { digest: sha(manifest), config: configDigest, size: manifest.length };
}

describe("registryDigestOf", () => {
  it("answers the tag's digest only when its config is the pulled image", async () => {
    const pulled = await image("1", "amd64");
    const session = { insecure: true };
    expect(await registryDigestOf(`${registry.host}/base/img:1`, pulled.config, "linux/amd64", session)).toBe(pulled.digest);
    // The tag moved to another image since the pull: no digest rather than a wrong one.
    await image("1", "amd64");
    expect(await registryDigestOf(`${registry.host}/base/img:1`, pulled.config, "linux/amd64", session)).toBeNull();
  });

  it("resolves an index to the build's platform", async () => {
    const amd = await image("amd", "amd64");
    const arm = await image("arm", "arm64");
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.size, platform: { os: "linux", architecture: "amd64" } },
          { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.size, platform: { os: "linux", architecture: "arm64" } },
        ],
      }),
    );
    await new RegistrySession(`${registry.host}/base/img:multi`, { insecure: true }).putManifest("multi", index, OCI_INDEX);
    const ref = `${registry.host}/base/img:multi`;
    expect(await registryDigestOf(ref, arm.config, "linux/arm64", { insecure: true })).toBe(arm.digest);
    expect(await registryDigestOf(ref, amd.config, "linux/amd64", { insecure: true })).toBe(amd.digest);
    expect(await registryDigestOf(ref, amd.config, "linux/arm64", { insecure: true })).toBeNull();
  });
});

describe("unpinnedBases", () => {
  it("lists the images a layer's FROM lines name without a digest and the build pulls, never the parent layer", () => {
    const layer = (dockerfileCommands: string[], buildArgs: Record<string, string> = {}) =>
      ({ dockerfileCommands, buildArgs }) as unknown as JobLayer;
    expect(unpinnedBases(layer(["FROM debian:bookworm-slim", "RUN true"]))).toEqual(["debian:bookworm-slim"]);
    expect(unpinnedBases(layer(["FROM base", "RUN true"]))).toEqual([]);
    expect(unpinnedBases(layer([`FROM busybox@sha256:${"a".repeat(64)}`]))).toEqual([]);
    // Named through an ARG or by COPY --from: not a literal FROM image, so not reported (the provenance does not list them).
    expect(unpinnedBases(layer(["ARG V=1.36", "FROM busybox:${V}", "COPY --from=alpine:3 /x /x"], { V: "1.37" }))).toEqual([]);
    expect(unpinnedBases(layer(["FROM --platform=linux/arm64 alpine:3 AS a", "FROM debian:12", "COPY --from=a /x /x"]))).toEqual([
      "alpine:3",
      "debian:12",
    ]);
  });
});
