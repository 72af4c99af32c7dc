// Attestations (decision 0024) through the Worker's own fetch: the runner's `sbom` report is
// checked with the build, signed with KILN_ATTESTATION_KEY and attached through the referrers
// API; the JWKS publishes the public key only; another workspace cannot read them; the
// provenance records what the Build object knows.
import { env, SELF } from "cloudflare:test";
import {
  type AttestationKeySet,
  CYCLONEDX_PREDICATE,
  DSSE_ENVELOPE_MEDIA_TYPE,
  type DsseEnvelope,
  digestHex,
  type Job,
  SLSA_PROVENANCE_V1,
  verifyEnvelope,
} from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { acceptSbomReport } from "../../workers/attestations/attest.ts";
import { attestationKeys } from "../../workers/attestations/keys.ts";
import { ApiError } from "../../workers/errors.ts";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import { apiJson, digestFor, dispatchedBuild, newTenant, ORIGIN, sendEvent, settle, type TestFleet } from "./helpers.ts";

const BOM = {
  bomFormat: "CycloneDX",
  specVersion: "1.6",
  components: [
    { type: "library", name: "curl", version: "7.88.1-10+deb12u5", purl: "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5" },
    { type: "library", name: "requests", version: "2.31.0", purl: "pkg:pypi/requests@2.31.0" },
  ],
};

const basic = (token: string) => ({ authorization: `Basic ${btoa(`kiln:${token}`)}` });

async function builtJob(): Promise<{
  fleet: TestFleet;
  job: Job;
  buildId: string;
  imageId: string;
  token: string;
  ws: string;
  digest: string;
}> {
  const { fleet, job, buildId, t, submitted } = await dispatchedBuild(2);
  for (const e of [{ type: "accepted" }, { type: "started" }] as const) expect((await sendEvent(fleet, job, e)).status).toBe(200);
  for (const l of job.layers) {
    await registerLayerImage(job, l, digestFor(l.key));
    const event = { type: "layer_succeeded", layerKey: l.key, digest: digestFor(l.key), sizeBytes: 10, reference: l.target } as const;
    expect((await sendEvent(fleet, job, event)).status).toBe(200);
  }
  const top = job.layers.at(-1)!;
  return { fleet, job, buildId, imageId: submitted.body.id as string, token: t.token, ws: t.workspaceName, digest: digestFor(top.key) };
}

async function registry(path: string, token: string): Promise<Response> {
  return SELF.fetch(`${ORIGIN}/v2/${path}`, { headers: basic(token) });
}

async function keys(): Promise<AttestationKeySet> {
  return (await (await SELF.fetch(`${ORIGIN}/.well-known/kiln/attestation-keys`)).json()) as AttestationKeySet;
}

describe("attestations", () => {
  it("publishes the public key with its id and never the private part", async () => {
    const response = await SELF.fetch(`${ORIGIN}/.well-known/kiln/attestation-keys`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      keys: [
        { kty: "OKP", crv: "Ed25519", x: "sPY09vxn8bXsHc0J8iDYMt_i97FM7wZWhA6HcnfaWL4", kid: "kiln-test-1", alg: "EdDSA", use: "sig" },
      ],
    });
    expect(text).not.toContain('"d"');
  });

  it("signs and attaches the SBOM and the provenance to the image, listed by the referrers API", async () => {
    const { fleet, job, buildId, token, ws, digest } = await builtJob();
    const top = job.layers.at(-1)!;
    const report = await sendEvent(fleet, job, { type: "sbom", layerKey: top.key, digest, sbom: JSON.stringify(BOM) });
    expect(report).toMatchObject({ status: 200, body: { ok: true, cancel: false } });
    const index = (await (await registry(`${ws}/layers/referrers/${digest}`, token)).json()) as {
      manifests: { digest: string; artifactType: string; annotations: Record<string, string> }[];
    };
    expect(index.manifests).toHaveLength(2);
    expect(index.manifests.every((m) => m.artifactType === DSSE_ENVELOPE_MEDIA_TYPE)).toBe(true);
    const types = index.manifests.map((m) => m.annotations["in-toto.io/predicate-type"]).sort();
    expect(types).toEqual([CYCLONEDX_PREDICATE, SLSA_PROVENANCE_V1].sort());
    const statements: Record<string, any> = {};
    for (const entry of index.manifests) {
      const manifest = (await (await registry(`${ws}/layers/manifests/${entry.digest}`, token)).json()) as any;
      expect(manifest.subject.digest).toBe(digest);
      const envelope = (await (await registry(`${ws}/layers/blobs/${manifest.layers[0].digest}`, token)).json()) as DsseEnvelope;
      const verified = await verifyEnvelope(envelope, await keys());
      if (!verified.ok) throw new Error(verified.reason);
      expect(verified.keyid).toBe("kiln-test-1");
      const statement = JSON.parse(new TextDecoder().decode(verified.payload));
      expect(statement.subject).toEqual([{ name: `kiln.test/${ws}/layers`, digest: { sha256: digestHex(digest) } }]);
      statements[statement.predicateType] = statement.predicate;
      // One byte of the payload changed: the signature no longer verifies.
      const payload = atob(envelope.payload);
      const tampered = {
        ...envelope,
        payload: btoa(payload.slice(0, 10) + String.fromCharCode(payload.charCodeAt(10) ^ 1) + payload.slice(11)),
      };
      expect((await verifyEnvelope(tampered, await keys())).ok).toBe(false);
    }
    expect(statements[CYCLONEDX_PREDICATE].components.map((c: any) => c.name)).toEqual(["curl", "requests"]);
    const provenance = statements[SLSA_PROVENANCE_V1];
    expect(provenance.runDetails.metadata.invocationId).toBe(buildId);
    expect(provenance.runDetails.builder.id).toBe(`${ORIGIN}/v1/fleets/${fleet.id}`);
    expect(Date.parse(provenance.runDetails.metadata.finishedOn)).toBeGreaterThanOrEqual(
      Date.parse(provenance.runDetails.metadata.startedOn),
    );
    expect(provenance.buildDefinition.externalParameters.layers.map((l: any) => l.key)).toEqual(job.layers.map((l) => l.key));
    expect(provenance.buildDefinition.externalParameters.layers[0].spec.dockerfileCommands[0]).toBe("FROM busybox:1.36");
    expect(provenance.buildDefinition.resolvedDependencies).toContainEqual({ uri: "docker://busybox:1.36", name: "base-image" });
    expect(provenance.runDetails.byproducts.map((b: any) => `sha256:${b.digest.sha256}`)).toEqual(job.layers.map((l) => digestFor(l.key)));
  });

  it("copies the attestations with the image when a tag publishes it after the build", async () => {
    const { fleet, job, buildId, token, ws, digest, imageId } = await builtJob();
    const top = job.layers.at(-1)!;
    expect((await sendEvent(fleet, job, { type: "sbom", layerKey: top.key, digest, sbom: JSON.stringify(BOM) })).status).toBe(200);
    expect((await sendEvent(fleet, job, { type: "succeeded" })).status).toBe(200);
    await settle(buildId);
    const put = await apiJson("PUT", "/v1/tags/later:v1", { token, json: { imageId } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const home = (await (await registry(`${ws}/layers/referrers/${digest}`, token)).json()) as { manifests: { digest: string }[] };
    const tagged = (await (await registry(`${ws}/later/referrers/${digest}`, token)).json()) as { manifests: { digest: string }[] };
    expect(tagged.manifests.map((m) => m.digest).sort()).toEqual(home.manifests.map((m) => m.digest).sort());
    expect(tagged.manifests).toHaveLength(2);
    for (const m of tagged.manifests) expect((await registry(`${ws}/later/manifests/${m.digest}`, token)).status).toBe(200);
  });

  it("keeps another workspace from listing or reading the attestations of a private image", async () => {
    const { fleet, job, token, ws, digest } = await builtJob();
    const top = job.layers.at(-1)!;
    expect((await sendEvent(fleet, job, { type: "sbom", layerKey: top.key, digest, sbom: null })).status).toBe(200);
    const own = (await (await registry(`${ws}/layers/referrers/${digest}`, token)).json()) as { manifests: { digest: string }[] };
    expect(own.manifests).toHaveLength(1);
    const other = await newTenant();
    for (const path of [`${ws}/layers/referrers/${digest}`, `${ws}/layers/manifests/${own.manifests[0]!.digest}`]) {
      const response = await registry(path, other.token);
      expect(response.status, path).toBeGreaterThanOrEqual(400);
      expect(await response.text()).not.toContain(own.manifests[0]!.digest);
    }
  });

  it("refuses a report for another digest, a lower layer, a stale attempt or a body that is not CycloneDX, attaching nothing", async () => {
    const { fleet, job, token, ws, digest } = await builtJob();
    const top = job.layers.at(-1)!;
    const cases = [
      { event: { layerKey: top.key, digest: `sha256:${"9".repeat(64)}`, sbom: null }, status: 409, code: "unknown_layer" },
      { event: { layerKey: job.layers[0]!.key, digest: digestFor(job.layers[0]!.key), sbom: null }, status: 409, code: "unknown_layer" },
      { event: { layerKey: top.key, digest, sbom: '{"bomFormat":"SPDX"}' }, status: 400, code: "invalid_request" },
      { event: { layerKey: top.key, digest, sbom: "not json" }, status: 400, code: "invalid_request" },
    ];
    for (const { event, status, code } of cases) {
      const r = await sendEvent(fleet, job, { type: "sbom", ...event });
      expect(r.status, JSON.stringify(event)).toBe(status);
      expect(r.body.error.code).toBe(code);
    }
    const stale = await sendEvent(fleet, { ...job, fencingToken: 9 }, { type: "sbom", layerKey: top.key, digest, sbom: null });
    expect(stale).toMatchObject({ status: 409, body: { error: { code: "stale_attempt" } } });
    const index = (await (await registry(`${ws}/layers/referrers/${digest}`, token)).json()) as { manifests: unknown[] };
    expect(index.manifests).toEqual([]);
  });

  it("answers a report 422 when no key is configured (the runner stops retrying), and never echoes a bad key", async () => {
    const { job, digest } = await builtJob();
    const top = job.layers.at(-1)!;
    const body = {
      type: "sbom",
      jobId: job.jobId,
      attemptId: job.attemptId,
      fencingToken: job.fencingToken,
      layerKey: top.key,
      digest,
      sbom: null,
    };
    const missing = await acceptSbomReport({ ...env, KILN_ATTESTATION_KEY: undefined }, body).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiError);
    expect((missing as ApiError).status).toBe(422);
    expect((missing as ApiError).message).toContain("wrangler secret put KILN_ATTESTATION_KEY");
    const secretLooking = '{"kty":"OKP","crv":"Ed25519","d":"c2VjcmV0LXZhbHVl"}';
    const invalid = await attestationKeys({ KILN_ATTESTATION_KEY: secretLooking }).catch((e: unknown) => e);
    expect((invalid as ApiError).status).toBe(503);
    expect((invalid as ApiError).message).not.toContain("c2VjcmV0LXZhbHVl");
    const publicOnly = JSON.stringify({ keys: [{ kty: "OKP", crv: "Ed25519", x: "sPY09vxn8bXsHc0J8iDYMt_i97FM7wZWhA6HcnfaWL4" }] });
    expect(((await attestationKeys({ KILN_ATTESTATION_KEY: publicOnly }).catch((e: unknown) => e)) as ApiError).code).toBe(
      "attestation_key_invalid",
    );
  });
});
