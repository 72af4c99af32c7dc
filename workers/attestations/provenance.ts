/**
 * SLSA v1 provenance of a Kiln build (decision 0024), pure: an in-toto Statement whose subject
 * is the image's manifest digest, made only from what the Build object holds (the layer specs
 * and keys, the digests it checked, the fleet it dispatched to, its times) and never from what
 * the runner claims.
 */
import {
  digestHex,
  IN_TOTO_STATEMENT_V1,
  type InTotoStatement,
  KILN_VERSION,
  type LayerSpec,
  SLSA_PROVENANCE_V1,
} from "@kiln-build/protocol";
import type { AttestationFacts } from "./facts.ts";

/** `buildDefinition.buildType` of Kiln provenance: a chain of layer specs built in order. */
export const KILN_BUILD_TYPE = "urn:kiln:build-type:layer-chain:v1";

type Dependency = { uri: string; name?: string; digest?: Record<string, string>; annotations?: Record<string, string> };

/** The statement's subject: the image's repository and manifest digest. */
export function subjectOf(facts: AttestationFacts): InTotoStatement["subject"] {
  const repository = facts.subject.reference.split("@")[0]!;
  return [{ name: repository, digest: { sha256: digestHex(facts.subject.digest) } }];
}

/** The `FROM` images of a spec's Dockerfile lines (not `base`, the parent layer, nor `scratch`), with the digest when pinned. */
export function baseImagesOf(spec: LayerSpec): Dependency[] {
  const out: Dependency[] = [];
  for (const line of spec.dockerfileCommands) {
    const m = /^FROM\s+(?:--platform=\S+\s+)?(\S+)/i.exec(line.trim());
    const image = m?.[1];
    if (!image || image === "base" || image === "scratch" || image.includes("$")) continue;
    const pinned = /@sha256:([0-9a-f]{64})$/.exec(image);
    out.push({ uri: `docker://${image}`, name: "base-image", ...(pinned ? { digest: { sha256: pinned[1]! } } : {}) });
  }
  return out;
}

// What of a spec the provenance records: everything, but a build function by its digest (it may be megabytes).
async function recordedSpec(spec: LayerSpec): Promise<Record<string, unknown>> {
  const { buildFunction, forceBuild: _force, ...rest } = spec;
  if (!buildFunction) return { ...rest, buildFunction: null };
  const bytes = new TextEncoder().encode(JSON.stringify(buildFunction));
  const hash = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { ...rest, buildFunction: { sha256: hash } };
}

/** The resolved dependencies: the parent image, each base image, each build context. */
export function dependenciesOf(facts: AttestationFacts): Dependency[] {
  const deps: Dependency[] = [];
  if (facts.parentReference) {
    const digest = /@sha256:([0-9a-f]{64})$/.exec(facts.parentReference)?.[1];
    deps.push({ uri: `docker://${facts.parentReference}`, name: "parent-layer", ...(digest ? { digest: { sha256: digest } } : {}) });
  }
  for (const layer of facts.layers) {
    deps.push(...baseImagesOf(layer.spec).map((dep) => withResolvedDigest(dep, layer.key, facts)));
    const context = layer.spec.context;
    if (context)
      deps.push({
        uri: `kiln-context:${context.digest}`,
        name: `context of layer ${layer.index}`,
        digest: { sha256: digestHex(context.digest) },
      });
  }
  return deps;
}

// An unpinned base image gets the digest the job's runner pulled, marked as the runner's word.
function withResolvedDigest(dep: Dependency, layerKey: string, facts: AttestationFacts): Dependency {
  if (dep.digest) return dep;
  const resolved = facts.baseDigests?.find((b) => b.layerKey === layerKey && `docker://${b.reference}` === dep.uri);
  if (!resolved) return dep;
  return { ...dep, digest: { sha256: digestHex(resolved.digest) }, annotations: { "build.kiln.resolved-by": "runner" } };
}

/** The SLSA v1 provenance statement for `facts`, finished at `finishedMs`. */
export async function provenanceStatement(facts: AttestationFacts, finishedMs: number): Promise<InTotoStatement> {
  const layers = await Promise.all(
    facts.layers.map(async (l) => ({ index: l.index, key: l.key, cached: l.state === "cached", spec: await recordedSpec(l.spec) })),
  );
  return {
    _type: IN_TOTO_STATEMENT_V1,
    subject: subjectOf(facts),
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: KILN_BUILD_TYPE,
        externalParameters: { layers, parentReference: facts.parentReference },
        internalParameters: { workspace: facts.workspaceName, builderVersion: facts.builderVersion },
        resolvedDependencies: dependenciesOf(facts),
      },
      runDetails: {
        builder: {
          id: `${facts.origin}/v1/fleets/${facts.fleetId}`,
          version: { kiln: KILN_VERSION, builderVersion: facts.builderVersion },
        },
        metadata: {
          invocationId: facts.buildId,
          startedOn: new Date(facts.startedMs).toISOString(),
          finishedOn: new Date(finishedMs).toISOString(),
        },
        byproducts: facts.layers
          .filter((l) => l.digest !== null)
          .map((l) => ({ name: `layer ${l.index} (${l.key})`, uri: `docker://${l.reference}`, digest: { sha256: digestHex(l.digest!) } })),
      },
    },
  };
}
