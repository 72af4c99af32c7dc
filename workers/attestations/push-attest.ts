/**
 * Attestations for a pushed image (decision 0024, external registries). The push relabels the
 * config and annotates the manifest, so the copy in the target has another digest than the
 * image Kiln built and attested. After a target's `push_result`, the runner sends the pushed
 * manifest's text (and, for an index, its platform manifests'); the Build object vouches that
 * the digest is what this attempt reported for that target, this module checks the text hashes
 * to it and that each pushed manifest holds exactly the built manifest's layers, then re-signs
 * the built image's own verified SBOM and provenance with the pushed digest as subject (the
 * provenance naming the built digest among its resolved dependencies). The runner attaches
 * them to the target. Called by the runner-events route after the fleet's signature verified.
 */
import {
  DSSE_ENVELOPE_MEDIA_TYPE,
  DsseEnvelopeSchema,
  digestHex,
  digestOfBytes,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_V1,
  type InTotoStatement,
  InTotoStatementSchema,
  type PushAttestationsRequest,
  PushAttestationsRequestSchema,
  type PushAttestationsResponse,
  parsePushReference,
  SLSA_PROVENANCE_V1,
  signEnvelope,
  verifyEnvelope,
} from "@kiln-build/protocol";
import { z } from "zod";
import { ApiError, badRequest, conflict, notFound } from "../errors.ts";
import { blobKey } from "../registry/blob-writer.ts";
import { db, referrers, storedManifest } from "../registry/store.ts";
import type { PushAttestationFacts, PushAttestationFactsAnswer, PushAttestationRefusal } from "./facts.ts";
import { type AttestationKeys, attestationKeys } from "./keys.ts";

const Descriptor = z.object({ mediaType: z.string().optional(), digest: z.string(), size: z.number().int().nonnegative() }).loose();
const Manifest = z.object({ mediaType: z.string().optional(), layers: z.array(Descriptor).optional() }).loose();
const Index = z.object({ mediaType: z.string().optional(), manifests: z.array(Descriptor) }).loose();

const REFUSALS: Record<PushAttestationRefusal, ApiError> = {
  unknown_build: notFound("Build"),
  stale_attempt: conflict("stale_attempt", "This attempt is no longer current (retried, cancelled or finished). Stop the job."),
  unknown_push_target: conflict("unknown_push_target", "This job does not push to that target."),
  unknown_push_digest: conflict(
    "unknown_push_digest",
    "Attestations are signed only for the digest this attempt reported for the target in a succeeded push_result.",
  ),
};

/** A pushed manifest and the built one it is a copy of. */
type Pair = { pushed: { mediaType: string; digest: string; size: number }; built: string };

const encode = (text: string) => new Uint8Array(new TextEncoder().encode(text));
const sha256 = async (bytes: Uint8Array<ArrayBuffer>) => digestOfBytes(await crypto.subtle.digest("SHA-256", bytes));

/** Asks the job's Build object whether `ask` names a digest its runner pushed; throws the refusal. */
export async function vouchedPush(
  env: Env,
  ask: { jobId: string; attemptId: string; fencingToken: number; reference: string; digest: string },
): Promise<PushAttestationFacts> {
  const { jobId, ...rest } = ask;
  const answer = (await env.BUILD.getByName(jobId).pushAttestationFacts(rest)) as PushAttestationFactsAnswer;
  if (!answer.ok) throw REFUSALS[answer.error];
  return answer.facts;
}

/** Accepts a verified `push_attestations` body: checks it, and answers with the signed statements to attach. */
export async function acceptPushAttestations(env: Env, body: unknown): Promise<PushAttestationsResponse> {
  const parsed = PushAttestationsRequestSchema.safeParse(body);
  if (!parsed.success) throw badRequest("The body is not a push_attestations request.", parsed.error.issues);
  const request = parsed.data;
  // Not configured ends the runner's delivery (422), as for the sbom report.
  const keys = await attestationKeys(env).catch((error: unknown) => {
    throw error instanceof ApiError && error.status === 503 ? new ApiError(422, error.code, error.message) : error;
  });
  const facts = await vouchedPush(env, request);
  const pairs = await pairManifests(env, facts, request);
  const subjects: PushAttestationsResponse["subjects"] = [];
  for (const pair of pairs) {
    const statements = [];
    for (const statement of await builtStatements(env, facts, pair.built, keys)) {
      const resigned = pushedStatement(statement, facts, pair);
      const envelope = await signEnvelope(IN_TOTO_PAYLOAD_TYPE, encode(JSON.stringify(resigned)), keys.signing.key, keys.signing.kid);
      statements.push({ predicateType: resigned.predicateType, envelope });
    }
    subjects.push({ subject: pair.pushed, statements });
  }
  return { ok: true, cancel: false, buildId: facts.buildId, subjects };
}

/**
 * The pushed manifests paired with the built ones: the first text must hash to the vouched
 * digest; an index's platform manifests must hash to its entries and pair by position with the
 * built index's; every pushed image manifest must list exactly its built manifest's layers.
 */
async function pairManifests(env: Env, facts: PushAttestationFacts, request: PushAttestationsRequest): Promise<Pair[]> {
  const texts = request.manifests.map((t) => encode(t));
  if ((await sha256(texts[0]!)) !== facts.pushedDigest) throw badRequest("manifests[0] does not hash to the pushed digest.");
  const home = `${facts.workspaceName}/layers`;
  const built = await storedManifest(env, home, facts.source.digest);
  if (!built) throw conflict("unknown_push_digest", "The registry no longer holds the built image.");
  const top = parseJson(texts[0]!);
  const builtTop = parseJson(built.bytes);
  const pushedIndex = Index.safeParse(top);
  const builtIndex = Index.safeParse(builtTop);
  if (pushedIndex.success !== builtIndex.success) throw mismatch("one is an index, the other is not");
  if (!pushedIndex.success || !builtIndex.success) {
    if (texts.length !== 1) throw badRequest("A single-platform push sends one manifest.");
    await sameLayers(top, builtTop);
    const pushed = { mediaType: mediaTypeOf(top, built.row.mediaType), digest: facts.pushedDigest, size: texts[0]!.byteLength };
    return [{ pushed, built: facts.source.digest }];
  }
  const children = pushedIndex.data.manifests;
  if (children.length !== builtIndex.data.manifests.length || texts.length !== children.length + 1)
    throw mismatch("the index has another number of platform manifests");
  const pairs: Pair[] = [];
  for (const [i, child] of children.entries()) {
    const text = texts[i + 1]!;
    if ((await sha256(text)) !== child.digest) throw badRequest(`manifests[${i + 1}] does not hash to the index's entry ${i}.`);
    const builtChild = builtIndex.data.manifests[i]!;
    const builtBytes = await storedManifest(env, home, builtChild.digest);
    if (!builtBytes) throw conflict("unknown_push_digest", `The registry no longer holds ${builtChild.digest}.`);
    await sameLayers(parseJson(text), parseJson(builtBytes.bytes));
    pairs.push({
      pushed: { mediaType: mediaTypeOf(child, builtBytes.row.mediaType), digest: child.digest, size: text.byteLength },
      built: builtChild.digest,
    });
  }
  // The index itself gets none: decision 0024 attests platform manifests; an index signature is future work.
  return pairs;
}

async function sameLayers(pushed: unknown, built: unknown): Promise<void> {
  const a = Manifest.safeParse(pushed);
  const b = Manifest.safeParse(built);
  const layers = (m: typeof a) => (m.success ? (m.data.layers ?? []).map((l) => l.digest).join(",") : null);
  if (layers(a) === null || layers(a) !== layers(b)) throw mismatch("the pushed manifest's layers are not the built image's");
}

function mismatch(why: string): ApiError {
  return conflict("push_mismatch", `The pushed image is not a copy of the image this build made: ${why}.`);
}

function mediaTypeOf(json: unknown, fallback: string): string {
  const declared = (json as { mediaType?: unknown } | null)?.mediaType;
  return typeof declared === "string" && declared ? declared : fallback;
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw badRequest("A pushed manifest is not JSON.");
  }
}

/**
 * The statements attached to the built image in `<ws>/layers` that verify with the server's own
 * keys and name the built digest (a user may push anything next to them; only Kiln's count),
 * one per predicate type (a replayed report may have attached two; the last listed wins).
 */
async function builtStatements(env: Env, facts: PushAttestationFacts, built: string, keys: AttestationKeys): Promise<InTotoStatement[]> {
  const home = `${facts.workspaceName}/layers`;
  const byType = new Map<string, InTotoStatement>();
  for (const entry of await referrers(db(env), home, built, DSSE_ENVELOPE_MEDIA_TYPE)) {
    const stored = await storedManifest(env, home, entry.digest);
    const layer = stored && Manifest.safeParse(parseJson(stored.bytes));
    const envelopeDigest = layer?.success ? layer.data.layers?.find((l) => l.mediaType === DSSE_ENVELOPE_MEDIA_TYPE)?.digest : undefined;
    if (!envelopeDigest) continue;
    const object = await env.REGISTRY.get(blobKey(envelopeDigest));
    if (!object) continue;
    const envelope = DsseEnvelopeSchema.safeParse(safeJson(await object.text()));
    if (!envelope.success || envelope.data.payloadType !== IN_TOTO_PAYLOAD_TYPE) continue;
    const verified = await verifyEnvelope(envelope.data, keys.published);
    if (!verified.ok) continue;
    const statement = InTotoStatementSchema.safeParse(safeJson(new TextDecoder().decode(verified.payload)));
    if (!statement.success || !statement.data.subject.some((s) => s.digest.sha256 === digestHex(built))) continue;
    byType.set(statement.data.predicateType, statement.data);
  }
  return [...byType.values()];
}

/** `statement` about the pushed copy: its subject the target's digest; a provenance also names the built image. */
export function pushedStatement(statement: InTotoStatement, facts: PushAttestationFacts, pair: Pair): InTotoStatement {
  const target = parsePushReference(facts.reference);
  const name = "error" in target ? facts.reference : `${target.host}/${target.repository}`;
  const subject = [{ name, digest: { sha256: digestHex(pair.pushed.digest) } }];
  if (statement.predicateType !== SLSA_PROVENANCE_V1) return { ...statement, _type: IN_TOTO_STATEMENT_V1, subject };
  const predicate = structuredClone(statement.predicate) as {
    buildDefinition?: { resolvedDependencies?: unknown[] };
    runDetails?: { byproducts?: unknown[] };
  };
  const builtRepository = facts.source.reference.split("@")[0]!;
  predicate.buildDefinition ??= {};
  predicate.buildDefinition.resolvedDependencies = [
    ...(predicate.buildDefinition.resolvedDependencies ?? []),
    { uri: `docker://${builtRepository}@${pair.built}`, name: "kiln-built-image", digest: { sha256: digestHex(pair.built) } },
  ];
  predicate.runDetails ??= {};
  predicate.runDetails.byproducts = [
    ...(predicate.runDetails.byproducts ?? []),
    { name: "pushed-image", uri: `docker://${name}@${pair.pushed.digest}`, digest: { sha256: digestHex(pair.pushed.digest) } },
  ];
  return { _type: IN_TOTO_STATEMENT_V1, subject, predicateType: statement.predicateType, predicate };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
