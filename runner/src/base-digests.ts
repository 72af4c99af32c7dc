/**
 * The digests of the base images a job pulled (decision 0024, unpinned `FROM`): for each
 * layer, the registry images its Dockerfile pulls without a digest, read from the local image
 * the backend pulled (`buildah inspect`), sent to the orchestrator before the `sbom` report so
 * the provenance records what was actually built on. Best effort: a backend without local
 * images, an image not found or an orchestrator that does not take the report is logged and
 * nothing more.
 */
import type { BaseDigestsReport, JobLayer } from "@kiln-build/protocol";
import type { BuildBackend } from "./backends/types.ts";
import { pulledImages } from "./base-images.ts";
import type { EventClient } from "./event-client.ts";
import { type Command, captureProcess } from "./process.ts";
import { reportSbom, type SbomEnv } from "./sbom-report.ts";

/** How long the runner keeps retrying the report. */
export const BASE_DIGESTS_DELIVERY_MS = 60_000;

/** The unpinned registry images of `layers` (FROM, `COPY --from`, `--mount=from=`), each with its layer. */
export function unpinnedBases(layers: readonly JobLayer[]): { layerKey: string; reference: string }[] {
  const out: { layerKey: string; reference: string }[] = [];
  for (const layer of layers) {
    // `FROM base` is the parent layer: pinned by digest already, and no pull.
    const { images } = pulledImages(layer.dockerfileCommands, { buildArgs: layer.buildArgs, parentReference: null });
    for (const reference of images) if (reference !== "base" && !reference.includes("@")) out.push({ layerKey: layer.key, reference });
  }
  return out;
}

/** Resolves and reports the digests of `layers`' unpinned bases; never throws. */
export async function reportBaseDigests(
  backend: BuildBackend,
  events: Pick<EventClient, "deliverBaseDigests">,
  layers: readonly JobLayer[],
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const inspect = (backend as { imageDigest?: (image: string) => Command }).imageDigest;
  const wanted = unpinnedBases(layers);
  if (wanted.length === 0 || !inspect) return;
  const bases: BaseDigestsReport["bases"] = [];
  for (const base of wanted.slice(0, 64)) {
    try {
      const digest = (await captureProcess(inspect.call(backend, base.reference), signal)).trim();
      if (/^sha256:[0-9a-f]{64}$/.test(digest)) bases.push({ ...base, digest });
    } catch (error) {
      log(`base image ${base.reference}: digest not read (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`);
    }
  }
  if (bases.length === 0) return;
  const giveUp = AbortSignal.timeout(BASE_DIGESTS_DELIVERY_MS);
  const outcome = await events
    .deliverBaseDigests(bases, signal ? AbortSignal.any([signal, giveUp]) : giveUp)
    .catch(() => "failed" as const);
  if (outcome === "delivered") for (const b of bases) log(`base image ${b.reference} pulled at ${b.digest}`);
  else log(`the orchestrator did not take the base image digests (${outcome}); the provenance names them without digest`);
}

/** What the orchestrator hears after the image's top layer: its bases' digests, then its SBOM (the provenance is made then). */
export async function reportImage(
  env: SbomEnv,
  events: EventClient,
  layers: readonly JobLayer[],
  top: { key: string; target: string },
  digest: string,
): Promise<void> {
  await reportBaseDigests(env.backend, events, layers, (line) => env.shipper.system(null, line), env.signal);
  await reportSbom(env, events, top, digest);
}
