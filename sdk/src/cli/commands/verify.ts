/**
 * `kiln verify REF`: checks an image's signed SBOM and provenance (decision 0024) with
 * `verifyImage` and prints the provenance summary. Exit 1 with the failed check when any
 * attestation does not verify.
 */
import type { Command } from "commander";
import { VerificationError, verifyImage } from "../../verify.ts";
import type { CliContext } from "../context.ts";
import { CliError, EXIT, emit } from "../output.ts";

/** Adds `kiln verify` to `program`. */
export function registerVerifyCommand(program: Command, ctx: CliContext): void {
  program
    .command("verify <ref>")
    .description(
      "verify an image's signed provenance and SBOM, in the built-in registry (host/ws/layers@sha256:...) or where it was pushed (registry.example.com/app:v1)",
    )
    .option("--insecure-registry", "read an external registry over plain http")
    .action(async (ref: string, options: { insecureRegistry?: boolean }) => {
      try {
        const result = await verifyImage(ref, { client: ctx.client(), ...(options.insecureRegistry ? { insecure: true } : {}) });
        emit(ctx.json(), result, () => {
          const p = result.provenance;
          return [
            `Verified ${result.repository}@${result.digest} (keys: ${result.keyIds.join(", ")})`,
            `  build:    ${p.buildId} on ${p.builder}`,
            `  times:    ${p.startedOn} -> ${p.finishedOn}`,
            `  layers:   ${p.layers.map((l) => `${l.index}:${l.key.slice(0, 12)}${l.cached ? " (cached)" : ""}`).join(", ")}`,
            `  bases:    ${p.baseImages.join(", ") || "(none)"}`,
            ...(p.builtImage ? [`  built as: ${p.builtImage}`] : []),
            `  sbom:     ${result.sbom ? `${result.sbom.packages} package(s)` : "none"}`,
            ...(result.platforms ?? []).map(
              (q) =>
                `  ${q.platform}: ${q.digest} build ${q.provenance.buildId}, sbom ${q.sbom ? `${q.sbom.packages} package(s)` : "none"}`,
            ),
          ].join("\n");
        });
      } catch (error) {
        if (!(error instanceof VerificationError)) throw error;
        throw new CliError(`verification failed: ${error.message}`, {
          exitCode: EXIT.failure,
          fix: "Do not run this image: its attestations do not match it, or were not signed by this server's keys.",
        });
      }
    });
}
