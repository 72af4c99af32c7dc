/**
 * The runner's half of attestations (decision 0024): after the job's top layer is published,
 * read the image's packages and send the CycloneDX SBOM to the orchestrator, which checks it
 * against the digest it recorded, signs it and attaches it. A failure to read the image is
 * reported (the SBOM is then null, the provenance is still made) and never fails the build.
 */
import { KILN_VERSION, MAX_SBOM_CHARS } from "@kiln-build/protocol";
import type { BuildBackend } from "./backends/types.ts";
import type { DeliveryOutcome, EventClient } from "./event-client.ts";
import { cycloneDx, type FoundPackage } from "./sbom.ts";
import { collectPackages, type RootfsCommands, withImageRootfs } from "./sbom-collect.ts";

/** How long the runner keeps retrying the report before it gives up on attestations for this image. */
export const SBOM_DELIVERY_MS = 60_000;

/** Where the job builds and logs (the job's `LayerBuildEnv` has both). */
export type SbomEnv = { backend: BuildBackend; shipper: { system(layerKey: string | null, line: string): void }; signal?: AbortSignal };

/** The packages found in an image, or why they could not be read. */
export type CollectedPackages = { ok: true; packages: FoundPackage[] } | { ok: false; error: string };

/**
 * Reads the packages of local image `target` once `ready` resolves. Started as soon as the top
 * layer is built, so reading the image overlaps its push instead of following it. Never rejects.
 */
export async function collectImagePackages(env: SbomEnv, target: string, ready?: Promise<void>): Promise<CollectedPackages> {
  try {
    await ready;
    const rootfs = (env.backend as { rootfs?: () => RootfsCommands }).rootfs?.();
    if (!rootfs) throw new Error(`the ${env.backend.name} backend cannot mount images`);
    return { ok: true, packages: await withImageRootfs(rootfs, target, collectPackages, env.signal) };
  } catch (error) {
    return { ok: false, error: String(error instanceof Error ? error.message : error) };
  }
}

/** Delivers the SBOM of `layer` (its packages as `collected`, by default read now), published as `digest`; never throws. */
export async function reportSbom(
  env: SbomEnv,
  events: EventClient,
  layer: { key: string; target: string },
  digest: string,
  collected: Promise<CollectedPackages> = collectImagePackages(env, layer.target),
): Promise<DeliveryOutcome | "skipped"> {
  const log = (line: string) => env.shipper.system(null, line);
  let sbom: string | null = null;
  let sbomError: string | undefined;
  try {
    const found = await collected;
    if (!found.ok) throw new Error(found.error);
    const { packages } = found;
    const doc = cycloneDx(packages, { digest, reference: layer.target, runnerVersion: KILN_VERSION, timestamp: new Date().toISOString() });
    sbom = JSON.stringify(doc);
    if (sbom.length > MAX_SBOM_CHARS)
      throw new Error(`the SBOM of ${packages.length} packages is larger than ${MAX_SBOM_CHARS} characters`);
    log(`SBOM: ${packages.length} package(s) found in the image`);
  } catch (error) {
    sbom = null;
    sbomError = String(error instanceof Error ? error.message : error).slice(0, 4000);
    log(`SBOM not made (the provenance is still attached): ${sbomError}`);
  }
  try {
    // The report is worth a minute of retries, never the job: \`succeeded\` waits behind it.
    const giveUp = AbortSignal.timeout(SBOM_DELIVERY_MS);
    const body = { type: "sbom" as const, layerKey: layer.key, digest, sbom, ...(sbomError ? { sbomError } : {}) };
    const outcome = await events.deliverSbom(body, env.signal ? AbortSignal.any([env.signal, giveUp]) : giveUp);
    if (outcome === "rejected") log("the orchestrator did not accept the SBOM (an older Kiln, or attestations not configured)");
    if (outcome === "gave_up") log("the orchestrator did not answer the SBOM report in time; the image has no attestations");
    return outcome;
  } catch (error) {
    log(`SBOM not sent: ${String(error)}`);
    return "skipped";
  }
}
