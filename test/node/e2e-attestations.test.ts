// End to end on the real stack (wrangler dev, a real buildah runner), busybox base: every built
// image gets a signed SBOM and SLSA provenance through the referrers API. A `runCommands` step
// writes a dpkg status entry, a Python dist-info and an npm package.json as those tools would
// (the busybox base has no apt: the files are real, their installation is not); the runner's
// collector reads them from the built image with `buildah mount`, the Worker signs.
// `verifyImage` and `kiln verify` succeed, and fail after one byte of an attestation or of the
// image reference changes. The base, named by tag, is recorded with the digest the runner pulled.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import path from "node:path";
import { DSSE_ENVELOPE_MEDIA_TYPE, type DsseEnvelope } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { Image, KilnClient, VerificationError, verifyImage } from "../../sdk/src/index.ts";
import { useBusyboxWorkspace } from "./busybox-workspace.ts";

const fx = useBusyboxWorkspace("e2e-attest");
const KILN = path.resolve(import.meta.dirname, "../../sdk/dist/cli/bin.js");

const DPKG = [
  "Package: curl\\nStatus: install ok installed\\nArchitecture: amd64\\nVersion: 7.88.1-10+deb12u5\\nDescription: command line tool\\n",
  "Package: libcurl4\\nStatus: install ok installed\\nArchitecture: amd64\\nVersion: 7.88.1-10+deb12u5\\n",
].join("\\n");

function kiln(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, KILN_SERVER_URL: fx.stack.url, KILN_TOKEN: fx.tenant.token, NO_COLOR: "1" };
    const child = spawn(process.execPath, [KILN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function registryJson<T>(client: KilnClient, parts: string[]): Promise<T> {
  return (await (await client.request("GET", ["v2", ...parts], { registry: true })).json()) as T;
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** Pushes `envelope` as a copy of attestation `like` (same subject and annotations) through the OCI API. */
async function pushAttestation(client: KilnClient, workspace: string, like: string, envelope: DsseEnvelope): Promise<void> {
  const blob = Buffer.from(JSON.stringify(envelope));
  await client.request("POST", ["v2", workspace, "layers", "blobs", "uploads", ""], {
    registry: true,
    query: { digest: sha256(blob) },
    body: blob,
    headers: { "content-type": "application/octet-stream" },
  });
  const manifest = await registryJson<{ layers: { digest: string; size: number }[] }>(client, [workspace, "layers", "manifests", like]);
  manifest.layers[0] = { ...manifest.layers[0]!, digest: sha256(blob), size: blob.byteLength };
  const bytes = Buffer.from(JSON.stringify(manifest));
  await client.request("PUT", ["v2", workspace, "layers", "manifests", sha256(bytes)], {
    registry: true,
    body: bytes,
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
  });
}

describe("signed attestations of built images", { timeout: 600_000 }, () => {
  it("attaches an SBOM naming the image's packages and a provenance; verify succeeds and fails after one changed byte", async () => {
    const image = await Image.fromRegistry(fx.base)
      .runCommands(
        `mkdir -p /var/lib/dpkg && printf '${DPKG}' > /var/lib/dpkg/status`,
        "mkdir -p /usr/lib/python3/dist-packages/requests-2.31.0.dist-info && printf 'Metadata-Version: 2.1\\nName: requests\\nVersion: 2.31.0\\nLicense: Apache 2.0\\n' > /usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
        `mkdir -p /app/node_modules/left-pad && echo '{"name":"left-pad","version":"1.3.0","license":"WTFPL"}' > /app/node_modules/left-pad/package.json`,
      )
      .build({ client: fx.tenant.client, tag: "attested:v1", logs: false });
    const { workspace, client } = fx.tenant;
    const digest = image.digest!;
    const view = await client.json<{ buildId: string }>("GET", ["v1", "images", image.imageId!]);

    const index = await registryJson<{ manifests: { digest: string; artifactType: string; annotations: Record<string, string> }[] }>(
      client,
      [workspace, "layers", "referrers", digest],
    );
    expect(index.manifests.map((m) => m.artifactType)).toEqual([DSSE_ENVELOPE_MEDIA_TYPE, DSSE_ENVELOPE_MEDIA_TYPE]);
    const sbomEntry = index.manifests.find((m) => m.annotations["in-toto.io/predicate-type"] === "https://cyclonedx.org/bom")!;
    const sbomManifest = await registryJson<{ layers: { digest: string }[] }>(client, [workspace, "layers", "manifests", sbomEntry.digest]);
    const envelope = await registryJson<DsseEnvelope>(client, [workspace, "layers", "blobs", sbomManifest.layers[0]!.digest]);
    const bom = JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8")).predicate;
    const names = (bom.components as { name: string; version: string }[]).map((c) => `${c.name}@${c.version}`).sort();
    expect(names).toEqual(["curl@7.88.1-10+deb12u5", "left-pad@1.3.0", "libcurl4@7.88.1-10+deb12u5", "requests@2.31.0"]);

    // The SDK function, by digest and by the tag published with the build (its referrers travel with it).
    const verified = await verifyImage(`${fx.stack.host}/${workspace}/layers@${digest}`, { client });
    expect(verified).toMatchObject({ digest, sbom: { packages: 4 }, provenance: { buildId: view.buildId } });
    expect(verified.provenance.layers.map((l) => l.index)).toEqual([0, 1]);
    // The base is named by tag: the provenance records the digest the runner pulled (base_digests), the one the registry serves.
    const [baseRepo, baseTag] = [
      fx.base.slice(fx.base.indexOf("/") + 1, fx.base.lastIndexOf(":")),
      fx.base.slice(fx.base.lastIndexOf(":") + 1),
    ];
    const baseManifest = await client.request("GET", ["v2", ...baseRepo.split("/"), "manifests", baseTag], {
      registry: true,
      headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
    });
    const baseDigest = sha256(new Uint8Array(await baseManifest.arrayBuffer()));
    expect(verified.provenance.baseImages).toEqual([`docker://${fx.base}@${baseDigest}`]);
    expect(Date.parse(verified.provenance.finishedOn)).toBeGreaterThanOrEqual(Date.parse(verified.provenance.startedOn));
    expect((await verifyImage(`${fx.stack.host}/${workspace}/attested:v1`, { client })).digest).toBe(digest);

    // The CLI.
    const ok = await kiln(["verify", `${fx.stack.host}/${workspace}/layers@${digest}`]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`build:    ${view.buildId}`);
    expect(ok.stdout).toContain("sbom:     4 package(s)");

    // One byte of the image reference changed: no such image, no verification.
    const last = digest.at(-1) === "0" ? "1" : "0";
    const wrong = await kiln(["verify", `${fx.stack.host}/${workspace}/layers@${digest.slice(0, -1)}${last}`]);
    expect(wrong.code).not.toBe(0);
    await expect(verifyImage(`${fx.stack.host}/${workspace}/layers@${digest.slice(0, -1)}${last}`, { client })).rejects.toThrow();

    // One byte of an attestation changed in transit: its digest no longer matches.
    const flipping: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).includes(`/blobs/${sbomManifest.layers[0]!.digest}`)) return response;
      const bytes = new Uint8Array(await response.arrayBuffer());
      bytes[40]! ^= 1;
      return new Response(bytes, { status: response.status, headers: response.headers });
    };
    const tamperedClient = new KilnClient({ serverUrl: fx.stack.url, token: fx.tenant.token, fetch: flipping });
    await expect(verifyImage(`${fx.stack.host}/${workspace}/layers@${digest}`, { client: tamperedClient })).rejects.toThrow(
      VerificationError,
    );

    // One byte of a signed payload changed and pushed back as another attestation of the image: the signature fails.
    const payload = Buffer.from(envelope.payload, "base64");
    payload[payload.indexOf("left-pad") + 1]! ^= 1;
    await pushAttestation(client, workspace, sbomEntry.digest, { ...envelope, payload: payload.toString("base64") });
    const forged = kiln(["verify", `${fx.stack.host}/${workspace}/layers@${digest}`]);
    await expect(verifyImage(`${fx.stack.host}/${workspace}/layers@${digest}`, { client })).rejects.toThrow(/no signature verifies/);
    expect((await forged).code).not.toBe(0);
  });
});
