// Attestations of pushed images (decision 0024, external registries) through the Worker's own
// fetch: after a target's push_result the runner asks for statements about the pushed digest;
// only the digest its own attempt reported for a target of its own job is signed, and the
// statements re-sign the built image's SBOM and provenance with the pushed digest as subject.
import { env, SELF } from "cloudflare:test";
import {
  type AttestationKeySet,
  CYCLONEDX_PREDICATE,
  digestHex,
  digestOfBytes,
  type Job,
  PushAttestationsResponseSchema,
  SLSA_PROVENANCE_V1,
  verifyEnvelope,
} from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { storedManifest } from "../../workers/registry/store.ts";
import { registerLayerImage } from "../security/workers/registry-images.ts";
import {
  apiJson,
  chain,
  digestFor,
  newFleet,
  newTenant,
  nthJob,
  ORIGIN,
  sendEvent,
  settle,
  submitImage,
  type TestFleet,
} from "./helpers.ts";

const TARGET = "registry.example.com/team/app:v1";
const OTHER_TARGET = "registry.example.com/team/other:v1";
const BOM = { bomFormat: "CycloneDX", specVersion: "1.6", components: [{ type: "library", name: "curl", version: "7.88.1" }] };

type Pushed = { fleet: TestFleet; job: Job; token: string; ws: string; imageId: string; built: string; text: string; digest: string };

const send = (fleet: TestFleet, job: Pick<Job, "jobId" | "attemptId" | "fencingToken">, event: Record<string, unknown>) =>
  sendEvent(fleet, job, event as Parameters<typeof sendEvent>[2]);

/** A build with push whose runner built the image, reported its SBOM, pushed a relabelled copy and reported it. */
async function pushedJob(targets = [TARGET, OTHER_TARGET]): Promise<Pushed> {
  const t = await newTenant();
  const fleet = await newFleet(t.workspaceId);
  const r = await submitImage(t.token, chain(2), { push: targets.map((reference) => ({ reference, secret: null })) });
  expect(r.status).toBe(202);
  await settle(r.body.buildId);
  const job = await nthJob(fleet, 1);
  for (const e of [{ type: "accepted" }, { type: "started" }]) expect((await send(fleet, job, e)).status).toBe(200);
  for (const l of job.layers) {
    await registerLayerImage(job, l, digestFor(l.key));
    const event = { type: "layer_succeeded", layerKey: l.key, digest: digestFor(l.key), sizeBytes: 10, reference: l.target };
    expect((await send(fleet, job, event)).status).toBe(200);
  }
  const top = job.layers.at(-1)!;
  const built = digestFor(top.key);
  expect((await send(fleet, job, { type: "sbom", layerKey: top.key, digest: built, sbom: JSON.stringify(BOM) })).status).toBe(200);
  // The copy the runner pushed: the built manifest with annotations (so another digest), the same layers.
  const stored = await storedManifest(env, `${t.workspaceName}/layers`, built);
  const manifest = JSON.parse(new TextDecoder().decode(stored!.bytes));
  const text = JSON.stringify({ ...manifest, annotations: { "build.kiln.id": job.jobId } });
  const digest = digestOfBytes(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const result = { type: "push_result", reference: TARGET, status: "succeeded", digest, message: null };
  expect((await send(fleet, job, result)).status).toBe(200);
  return { fleet, job, token: t.token, ws: t.workspaceName, imageId: r.body.id, built, text, digest };
}

const ask = (p: Pushed, over: Record<string, unknown> = {}) => ({
  type: "push_attestations",
  reference: TARGET,
  digest: p.digest,
  manifests: [p.text],
  ...over,
});

async function keys(): Promise<AttestationKeySet> {
  return (await (await SELF.fetch(`${ORIGIN}/.well-known/kiln/attestation-keys`)).json()) as AttestationKeySet;
}

describe("push_attestations", () => {
  it("signs the built image's SBOM and provenance for the pushed digest, naming the built digest", async () => {
    const p = await pushedJob();
    const answer = await send(p.fleet, p.job, ask(p));
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const parsed = PushAttestationsResponseSchema.parse(answer.body);
    expect(parsed.buildId).toBe(p.job.jobId);
    expect(parsed.subjects).toHaveLength(1);
    const [subject] = parsed.subjects;
    expect(subject!.subject).toEqual({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: p.digest, size: p.text.length });
    const jwks = await keys();
    const statements: Record<string, any> = {};
    for (const s of subject!.statements) {
      const verified = await verifyEnvelope(s.envelope, jwks);
      if (!verified.ok) throw new Error(verified.reason);
      const statement = JSON.parse(new TextDecoder().decode(verified.payload));
      expect(statement.subject).toEqual([{ name: "registry.example.com/team/app", digest: { sha256: digestHex(p.digest) } }]);
      statements[statement.predicateType] = statement.predicate;
    }
    expect(Object.keys(statements).sort()).toEqual([CYCLONEDX_PREDICATE, SLSA_PROVENANCE_V1].sort());
    expect(statements[CYCLONEDX_PREDICATE].components.map((c: any) => c.name)).toEqual(["curl"]);
    const provenance = statements[SLSA_PROVENANCE_V1];
    expect(provenance.runDetails.metadata.invocationId).toBe(p.job.jobId);
    expect(provenance.buildDefinition.resolvedDependencies).toContainEqual({
      uri: `docker://kiln.test/${p.ws}/layers@${p.built}`,
      name: "kiln-built-image",
      digest: { sha256: digestHex(p.built) },
    });
    expect(provenance.runDetails.byproducts).toContainEqual({
      name: "pushed-image",
      uri: `docker://registry.example.com/team/app@${p.digest}`,
      digest: { sha256: digestHex(p.digest) },
    });
  });

  it("refuses a digest not reported, a target not reported or not the job's, bytes that do not hash, and other layers", async () => {
    const p = await pushedJob();
    const refused = async (over: Record<string, unknown>, status: number, code: string) => {
      const answer = await send(p.fleet, p.job, ask(p, over));
      expect(answer.status, JSON.stringify(over).slice(0, 200)).toBe(status);
      expect(answer.body.error.code).toBe(code);
    };
    // A digest the runner did not report (what it would like signed) is refused even with matching bytes.
    const forged = JSON.stringify({ ...JSON.parse(p.text), annotations: { x: "y" } });
    const forgedDigest = digestOfBytes(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(forged)));
    await refused({ digest: forgedDigest, manifests: [forged] }, 409, "unknown_push_digest");
    // A target of the job whose result was not reported, and one the job was never given.
    await refused({ reference: OTHER_TARGET }, 409, "unknown_push_digest");
    await refused({ reference: "elsewhere.example/x:v1" }, 409, "unknown_push_target");
    // Bytes that are not the reported digest's.
    await refused({ manifests: [forged] }, 400, "invalid_request");
    // Reported bytes whose layers are not the built image's (a copy of something else).
    const other = JSON.parse(p.text);
    other.layers = [{ ...other.layers[0], digest: `sha256:${"0".repeat(64)}` }];
    const otherText = JSON.stringify(other);
    const otherDigest = digestOfBytes(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(otherText)));
    const result = { type: "push_result", reference: OTHER_TARGET, status: "succeeded", digest: otherDigest, message: null };
    expect((await send(p.fleet, p.job, result)).status).toBe(200);
    await refused({ reference: OTHER_TARGET, digest: otherDigest, manifests: [otherText] }, 409, "push_mismatch");
  });

  it("refuses another job's runner, another attempt and another workspace's build", async () => {
    const p = await pushedJob();
    const q = await pushedJob();
    // q's runner (its fleet's secret) naming p's job: the attempt is p's, the signature q's fleet's: 401.
    expect((await send(q.fleet, p.job, ask(p))).status).toBe(401);
    // p's runner naming its own job but q's pushed digest and bytes (another workspace's image).
    const crossed = await send(p.fleet, p.job, ask(p, { digest: q.digest, manifests: [q.text] }));
    expect(crossed.status).toBe(409);
    expect(crossed.body.error.code).toBe("unknown_push_digest");
    // A stale fencing token.
    const stale = await send(p.fleet, { ...p.job, fencingToken: p.job.fencingToken + 5 }, ask(p));
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("stale_attempt");
    // A job without push at all.
    const t = await newTenant();
    const fleet = await newFleet(t.workspaceId);
    const r = await submitImage(t.token, chain(1));
    await settle(r.body.buildId);
    const plain = await nthJob(fleet, 1);
    const none = await send(fleet, plain, ask(p));
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe("unknown_push_target");
  });

  it("shows what the runner attached with the target's push, to its workspace only", async () => {
    const p = await pushedJob([TARGET]);
    const report = {
      type: "push_attestations_result",
      reference: TARGET,
      digest: p.digest,
      status: "attached",
      count: 2,
      via: "tag",
      message: null,
    };
    expect((await send(p.fleet, p.job, report)).status).toBe(200);
    expect((await send(p.fleet, p.job, { ...report, digest: `sha256:${"1".repeat(64)}` })).status).toBe(409);
    expect((await send(p.fleet, p.job, { type: "succeeded" })).status).toBe(200);
    await settle(p.job.jobId);
    const view = await apiJson("GET", `/v1/images/${p.imageId}`, { token: p.token });
    expect(view.body.pushes).toEqual([
      {
        reference: TARGET,
        status: "succeeded",
        digest: p.digest,
        message: null,
        attestations: { status: "attached", count: 2, via: "tag", message: null },
      },
    ]);
    const other = await newTenant();
    expect((await apiJson("GET", `/v1/images/${p.imageId}`, { token: other.token })).status).toBe(404);
  });
});
