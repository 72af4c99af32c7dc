/**
 * The digests of the base images a job pulled (decision 0024, unpinned `FROM`). Once a layer is
 * built, and before it is pushed, each registry image its Dockerfile pulls without a digest is
 * resolved at its registry (with the layer's base login) and the answer is kept only when its
 * image config is the one the build pulled: the manifest's config digest must equal the local
 * image's id (`buildah images`). buildah's own record of the digest is not used: a `FROM`-only
 * layer re-commits the same image id with another manifest, and the local digest then names
 * that one (measured in the real-stack test). The digests go to the orchestrator before the
 * `sbom` report, so the provenance records what was built on. Best effort, never fails a job.
 */
import { type BaseDigestsReport, DEFAULT_PLATFORM, type JobLayer } from "@kiln-build/protocol";
import type { BuildBackend } from "./backends/types.ts";
import { pulledImages } from "./base-images.ts";
import type { EventClient } from "./event-client.ts";
import { type Command, captureProcess } from "./process.ts";
import type { RegistryLogin } from "./registry-auth.ts";
import { registryHostOf } from "./registry-auth.ts";
import { parseReference, RegistrySession } from "./registry-client.ts";
import { registryFetch } from "./registry-tls.ts";
import { type CollectedPackages, collectImagePackages, reportSbom, type SbomEnv } from "./sbom-report.ts";

/** How long the runner keeps retrying the report. */
export const BASE_DIGESTS_DELIVERY_MS = 60_000;

const INDEX_TYPES = new Set(["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]);

/**
 * The unpinned registry images `layer` pulls that a `FROM` line names literally (what the
 * provenance lists as base images; an image named through an ARG or by `COPY --from` is not
 * one, and the orchestrator would refuse the report); `FROM base` is the parent layer, no pull.
 */
export function unpinnedBases(layer: JobLayer): string[] {
  const { images } = pulledImages(layer.dockerfileCommands, { buildArgs: layer.buildArgs, parentReference: null });
  const literal = new Set(layer.dockerfileCommands.map((line) => /^FROM\s+(?:--platform=\S+\s+)?(\S+)/i.exec(line.trim())?.[1]));
  return images.filter((reference) => reference !== "base" && !reference.includes("@") && literal.has(reference));
}

/** What resolving needs: the backend's local storage, the base logins and how to reach registries. */
export type BaseDigestEnv = {
  backend: BuildBackend;
  shipper: { system(layerKey: string | null, line: string): void };
  signal?: AbortSignal;
  baseLogins: Map<number, RegistryLogin>;
  /** The job's login to the built-in registry (bases pulled from it use it, as the build does). */
  targetLogin: RegistryLogin;
  job: { registry: { host: string; insecure: boolean } };
  config: { insecureRegistries: readonly string[]; caFile?: string | undefined };
};

/**
 * The digest of `reference` at its registry when its image config is `imageId` (the local
 * image the build pulled): for an index, the entry of `platform`. Null when it is not.
 */
export async function registryDigestOf(
  reference: string,
  imageId: string,
  platform: string,
  session: ConstructorParameters<typeof RegistrySession>[1],
): Promise<string | null> {
  const registry = new RegistrySession(reference, session);
  let manifest = await registry.manifest(parseReference(reference).ref);
  let json = JSON.parse(manifest.bytes.toString("utf8")) as { mediaType?: string; manifests?: unknown; config?: { digest?: string } };
  if (INDEX_TYPES.has(manifest.mediaType?.split(";")[0]?.trim() || json.mediaType || "") || Array.isArray(json.manifests)) {
    const [os, architecture] = platform.split("/");
    const entries = (json.manifests ?? []) as { digest: string; platform?: { os?: string; architecture?: string } }[];
    const entry = entries.find((m) => m.platform?.os === os && m.platform?.architecture === architecture);
    if (!entry) return null;
    manifest = await registry.manifest(entry.digest);
    json = JSON.parse(manifest.bytes.toString("utf8"));
  }
  return json.config?.digest === imageId ? manifest.digest : null;
}

// What each job's layers pulled, noted before any of its images was pushed: keyed by the job's log
// shipper (one per job run), so it goes away with the job.
const noted = new WeakMap<object, BaseDigestsReport["bases"]>();

/** Notes the digests of `layer`'s unpinned bases (see the module comment). Never throws. */
export async function noteBaseDigests(env: BaseDigestEnv, layer: JobLayer): Promise<void> {
  const localId = (env.backend as { imageId?: (image: string) => Command }).imageId;
  const bases = unpinnedBases(layer);
  if (!localId || bases.length === 0) return;
  const list = noted.get(env.shipper) ?? [];
  noted.set(env.shipper, list);
  for (const reference of bases.slice(0, 8)) {
    try {
      const id = (await captureProcess(localId.call(env.backend, reference), env.signal)).trim().split("\n")[0] ?? "";
      const imageId = id.startsWith("sha256:") ? id : `sha256:${id}`;
      const host = registryHostOf(reference);
      const builtIn = host === env.job.registry.host;
      const insecure = (builtIn && env.job.registry.insecure) || env.config.insecureRegistries.includes(host);
      const session = {
        login: builtIn ? env.targetLogin : (env.baseLogins.get(layer.index) ?? null),
        insecure,
        fetch: registryFetch(env.config.caFile),
        ...(env.signal ? { signal: env.signal } : {}),
      };
      const digest = await registryDigestOf(reference, imageId, layer.platform ?? DEFAULT_PLATFORM, session);
      if (digest && list.length < 64) list.push({ layerKey: layer.key, reference, digest });
      else
        env.shipper.system(layer.key, `base image ${reference}: its registry no longer serves the pulled image; recorded without digest`);
    } catch (error) {
      const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
      env.shipper.system(layer.key, `base image ${reference}: digest not resolved (${why})`);
    }
  }
}

/** Reports the base digests noted for the job whose log `shipper` is; never throws. */
export async function reportBaseDigests(
  shipper: object,
  events: Pick<EventClient, "deliverBaseDigests">,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const bases = noted.get(shipper) ?? [];
  if (bases.length === 0) return;
  const giveUp = AbortSignal.timeout(BASE_DIGESTS_DELIVERY_MS);
  const outcome = await events
    .deliverBaseDigests(bases, signal ? AbortSignal.any([signal, giveUp]) : giveUp)
    .catch(() => "failed" as const);
  if (outcome === "delivered") for (const b of bases) log(`base image ${b.reference} pulled at ${b.digest}`);
  else log(`the orchestrator did not take the base image digests (${outcome}); the provenance names them without digest`);
}

/**
 * What the orchestrator hears after the image's top layer: its bases' digests, then its SBOM
 * (the provenance is made then). `collected`: the image's packages, read while it was pushed.
 */
export async function reportImage(
  env: SbomEnv,
  events: EventClient,
  top: { key: string; target: string },
  digest: string,
  collected?: Promise<CollectedPackages>,
): Promise<void> {
  await reportBaseDigests(env.shipper, events, (line) => env.shipper.system(null, line), env.signal);
  await reportSbom(env, events, top, digest, collected);
}

/**
 * Starts reading the top image's packages once it is built (`built.ready`), so that overlaps its push;
 * answers the report to send once the push gave its digest (`reportImage`).
 */
export function startImageReport(
  env: SbomEnv,
  events: EventClient,
  built: { layer: { key: string; target: string }; ready?: Promise<void> | undefined },
): (digest: string) => Promise<void> {
  const packages = collectImagePackages(env, built.layer.target, built.ready);
  return (digest) => reportImage(env, events, built.layer, digest, packages);
}
