/**
 * Attestations copied to an external registry (push-attestations.ts) against Debian's
 * `docker-registry` (distribution 2.8: no referrers API) with TLS and htpasswd auth: the
 * artifacts are stored with `subject` and found through the referrers tag schema's index;
 * a second push adds to the index without duplicates; a tag holding something else is never
 * overwritten; a registry that answers `OCI-Subject` needs no tag.
 */
import { createHash, randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import {
  DSSE_ENVELOPE_MEDIA_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  OCI_IMAGE_INDEX,
  type PushAttestationsResponse,
  type PushAttestationsStatus,
  referrersTag,
  type SigningCryptoKey,
  SLSA_PROVENANCE_V1,
  signEnvelope,
} from "@kiln-build/protocol";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AttestationCalls, attestPush, pushedManifests } from "../src/push-attestations.ts";
import { RegistrySession } from "../src/registry-client.ts";
import { registryFetch } from "../src/registry-tls.ts";
import { startRegistry, type TestRegistry } from "./helpers/registry.ts";
import { makeTestCa, type TestCa } from "./helpers/tls-ca.ts";

const PASSWORD = "attest-password-51c0";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

let ca: TestCa;
let target: TestRegistry;
let caFetch: typeof fetch;
let key: { privateKey: SigningCryptoKey };

beforeAll(async () => {
  ca = makeTestCa();
  caFetch = registryFetch(ca.caFile);
  target = await startRegistry({ htpasswd: `pusher:${bcrypt.hashSync(PASSWORD, 4)}\n`, tls: ca });
  key = (await crypto.subtle.generateKey("Ed25519", false, ["sign", "verify"])) as unknown as { privateKey: SigningCryptoKey };
}, 60_000);

afterAll(async () => {
  await target?.stop();
  rmSync(ca.dir, { recursive: true, force: true });
});

const sha = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const session = (repo: string, fetchImpl: typeof fetch = caFetch) =>
  new RegistrySession(`${target.host}/${repo}:x`, {
    login: { host: target.host, username: "pusher", password: PASSWORD },
    fetch: fetchImpl,
  });

// One pushed image: a random layer, a config, a manifest tagged v1.
async function pushedImage(repo: string): Promise<{ digest: string; text: string }> {
  const dst = session(repo);
  const layer = await dst.putBlob(randomBytes(1000));
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layer] } }));
  const configDigest = await dst.putBlob(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layer, size: 1000 }],
    }),
  );
  await dst.putManifest("v1", manifest, OCI_MANIFEST);
  return { digest: sha(manifest), text: manifest.toString("utf8") };
}

// What the orchestrator answers: one signed statement per predicate type about `digest`.
async function answerFor(digest: string, text: string, predicates: string[]): Promise<PushAttestationsResponse> {
  const statements = [];
  for (const predicateType of predicates) {
    const statement = {
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ name: "x", digest: { sha256: digest.slice(7) } }],
      predicateType,
      predicate: { n: 1 },
    };
    const envelope = await signEnvelope(IN_TOTO_PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(statement)), key.privateKey, "k1");
    statements.push({ predicateType, envelope });
  }
  return {
    ok: true,
    cancel: false,
    buildId: "bd-test",
    subjects: [{ subject: { mediaType: OCI_MANIFEST, digest, size: Buffer.byteLength(text) }, statements }],
  };
}

function calls(
  answer: PushAttestationsResponse | null,
  seen: { requests: unknown[]; reports: PushAttestationsStatus[] },
): AttestationCalls {
  return {
    request: async (body) => {
      seen.requests.push(body);
      return answer;
    },
    report: async (body) => {
      seen.reports.push({ status: body.status, count: body.count, via: body.via, message: body.message });
    },
  };
}

type Index = { mediaType: string; manifests: { digest: string; artifactType: string; annotations: Record<string, string> }[] };

describe("attestPush against docker-registry (no referrers API)", () => {
  it("stores each statement with its subject and lists them in the referrers tag's index", async () => {
    const image = await pushedImage("team/app");
    const seen = { requests: [] as unknown[], reports: [] as PushAttestationsStatus[] };
    const answer = await answerFor(image.digest, image.text, [SLSA_PROVENANCE_V1, "https://cyclonedx.org/bom"]);
    const lines: string[] = [];
    const status = await attestPush(
      session("team/app"),
      { reference: `${target.host}/team/app:v1`, digest: image.digest },
      calls(answer, seen),
      (l) => lines.push(l),
      (t) => t,
    );
    expect(status).toEqual({ status: "attached", count: 2, via: "tag", message: null });
    expect(seen.reports).toEqual([status]);
    expect(seen.requests).toEqual([{ reference: `${target.host}/team/app:v1`, digest: image.digest, manifests: [image.text] }]);
    expect(lines.join("\n")).toContain(`referrers tag ${referrersTag(image.digest)}`);
    const dst = session("team/app");
    const tagged = await dst.manifest(referrersTag(image.digest));
    const index = JSON.parse(tagged.bytes.toString("utf8")) as Index;
    expect(index.mediaType).toBe(OCI_IMAGE_INDEX);
    expect(index.manifests).toHaveLength(2);
    for (const entry of index.manifests) {
      expect(entry.artifactType).toBe(DSSE_ENVELOPE_MEDIA_TYPE);
      const artifact = await dst.manifest(entry.digest);
      expect(artifact.digest).toBe(entry.digest);
      const manifest = JSON.parse(artifact.bytes.toString("utf8"));
      expect(manifest.subject).toEqual({ mediaType: OCI_MANIFEST, digest: image.digest, size: Buffer.byteLength(image.text) });
      expect(manifest.artifactType).toBe(DSSE_ENVELOPE_MEDIA_TYPE);
      expect(entry.annotations["in-toto.io/predicate-type"]).toBe(manifest.annotations["in-toto.io/predicate-type"]);
      const envelope = Buffer.from(await (await dst.blob(manifest.layers[0].digest)).arrayBuffer());
      expect(sha(envelope)).toBe(manifest.layers[0].digest);
      expect(JSON.parse(envelope.toString("utf8")).payloadType).toBe(IN_TOTO_PAYLOAD_TYPE);
    }
    // Again (each artifact is new: its creation time differs): the index gains them and keeps the others, each once.
    const again = await answerFor(image.digest, image.text, [SLSA_PROVENANCE_V1, "https://example.com/other"]);
    await attestPush(
      dst,
      { reference: "r", digest: image.digest },
      calls(again, seen),
      () => {},
      (t) => t,
    );
    const after = JSON.parse((await dst.manifest(referrersTag(image.digest))).bytes.toString("utf8")) as Index;
    expect(after.manifests).toHaveLength(4);
    expect(after.manifests.slice(0, 2)).toEqual(index.manifests);
    expect(new Set(after.manifests.map((m) => m.digest)).size).toBe(4);
  });

  it("never overwrites a referrers tag that holds something else, and reports the failure", async () => {
    const image = await pushedImage("team/taken");
    const dst = session("team/taken");
    // The tag already names an ordinary image manifest.
    await dst.putManifest(referrersTag(image.digest), Buffer.from(image.text), OCI_MANIFEST);
    const seen = { requests: [] as unknown[], reports: [] as PushAttestationsStatus[] };
    const answer = await answerFor(image.digest, image.text, [SLSA_PROVENANCE_V1]);
    const status = await attestPush(
      dst,
      { reference: "r", digest: image.digest },
      calls(answer, seen),
      () => {},
      (t) => t,
    );
    expect(status.status).toBe("failed");
    expect(status.message).toMatch(/not overwritten/);
    expect((await dst.manifest(referrersTag(image.digest))).digest).toBe(image.digest);
  });

  it("reports none when the orchestrator signs nothing, and masks what a failure says", async () => {
    const image = await pushedImage("team/none");
    const seen = { requests: [] as unknown[], reports: [] as PushAttestationsStatus[] };
    expect(
      (
        await attestPush(
          session("team/none"),
          { reference: "r", digest: image.digest },
          calls(null, seen),
          () => {},
          (t) => t,
        )
      ).status,
    ).toBe("none");
    const missing = `sha256:${"0".repeat(64)}`;
    const failed = await attestPush(
      session("team/none"),
      { reference: "r", digest: missing },
      calls(null, seen),
      () => {},
      (t) => t.replaceAll("team/none", "***"),
    );
    expect(failed.status).toBe("failed");
    expect(failed.message).not.toContain("team/none");
  });

  it("needs no tag when the registry answers OCI-Subject (a registry with the referrers API)", async () => {
    const image = await pushedImage("team/api");
    // Only the header is added: what a distribution 3 / OCI 1.1 registry answers for a manifest with subject.
    const withSubject: typeof fetch = async (input, init) => {
      const response = await caFetch(input, init);
      const subject = init?.method === "PUT" && typeof init.body !== "undefined" ? subjectOf(init.body) : null;
      if (!subject || response.status !== 201) return response;
      const headers = new Headers(response.headers);
      headers.set("oci-subject", subject);
      return new Response(response.body, { status: response.status, headers });
    };
    const seen = { requests: [] as unknown[], reports: [] as PushAttestationsStatus[] };
    const answer = await answerFor(image.digest, image.text, [SLSA_PROVENANCE_V1]);
    const status = await attestPush(
      session("team/api", withSubject),
      { reference: "r", digest: image.digest },
      calls(answer, seen),
      () => {},
      (t) => t,
    );
    expect(status).toEqual({ status: "attached", count: 1, via: "referrers", message: null });
    expect(await session("team/api").manifestOrNull(referrersTag(image.digest))).toBeNull();
  });

  it("reads back an index with its platform manifests, in its order", async () => {
    const a = await pushedImage("team/multi");
    const b = await pushedImage("team/multi");
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_IMAGE_INDEX,
        manifests: [a, b].map((m) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: Buffer.byteLength(m.text) })),
      }),
    );
    const digest = await session("team/multi").putManifest("v2", index, OCI_IMAGE_INDEX);
    expect(await pushedManifests(session("team/multi"), digest)).toEqual([index.toString("utf8"), a.text, b.text]);
  });
});

function subjectOf(body: unknown): string | null {
  try {
    const text = Buffer.from(body as Uint8Array).toString("utf8");
    return (JSON.parse(text) as { subject?: { digest?: string } }).subject?.digest ?? null;
  } catch {
    return null;
  }
}
