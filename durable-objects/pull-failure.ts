/**
 * Reads a runner's `failed` report for an image its build could not pull because the
 * registry does not have it (404: MANIFEST_UNKNOWN, NAME_UNKNOWN), pure. The reference runner
 * reports it as `build` with "could not pull <image>: the registry has no such image, or does
 * not show it to this job's credentials (manifest unknown: ...)" (runner/src/pull-failure.ts);
 * releases before that as `infra` with the builder's last line ("buildah build exited with 125:
 * Error: creating build container: initializing source docker://<image>: reading manifest <tag>
 * in <repository>: manifest unknown"); both carry the builder's last lines in `logTail`, where
 * BuildKit says "failed to resolve source metadata for <image>: ... not found". Whether such an
 * image is the user's base or a cached layer the orchestrator pinned is decided by the caller
 * (`report-verify.ts`), which believes only its own registry about the latter.
 */

/** An image a failed pull named, as the builder wrote it, and what the registry answered. */
export type MissingImage = { reference: string; answer: string };

// What a registry answers for an image that does not exist, as the builders print it.
const NOT_THERE = "(manifest unknown|name unknown|not found)";
// The reference runner's own words.
const RUNNER = new RegExp(String.raw`could not pull (\S+?): the registry has no such image.*?${NOT_THERE}`, "i");
// containers/image (buildah, podman): "reading manifest <tag or digest> in <repository>: manifest unknown[: ...]".
const READING = new RegExp(String.raw`reading manifest (\S+) in (\S+?): ${NOT_THERE}`, "i");
// containers/image, the image as written: "initializing source docker://<image>: ...: manifest unknown".
const SOURCE = new RegExp(String.raw`initializing source docker://(\S+?): .*?${NOT_THERE}`, "i");
// BuildKit (buildctl, docker buildx): "failed to resolve source metadata for <image>: <image>: not found".
const BUILDKIT = new RegExp(String.raw`failed to resolve source metadata for (\S+?): .*?${NOT_THERE}`, "i");

/**
 * The image the failure says its registry does not have, or null when the report is about
 * something else. The message is read first, then the log tail from its end.
 */
export function missingImage(message: string, logTail: readonly string[]): MissingImage | null {
  for (const line of [message, ...[...logTail].reverse()]) {
    const found = missingImageIn(line);
    if (found) return found;
  }
  return null;
}

function missingImageIn(line: string): MissingImage | null {
  const runner = RUNNER.exec(line);
  if (runner) return { reference: runner[1]!, answer: runner[2]!.toLowerCase() };
  const reading = READING.exec(line);
  if (reading) {
    const [, ref, repository, answer] = reading as unknown as [string, string, string, string];
    const separator = /^[a-z0-9]+:[a-f0-9]{32,}$/i.test(ref) ? "@" : ":";
    return { reference: `${repository}${separator}${ref}`, answer: answer.toLowerCase() };
  }
  for (const pattern of [SOURCE, BUILDKIT]) {
    const match = pattern.exec(line);
    if (match) return { reference: match[1]!, answer: match[2]!.toLowerCase() };
  }
  return null;
}

/** The digest a reference pins (`...@sha256:<hex>`), or null. */
export function pinnedDigest(reference: string): string | null {
  const at = reference.lastIndexOf("@");
  return at >= 0 ? reference.slice(at + 1) : null;
}
