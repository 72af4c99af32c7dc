/**
 * Recognises a build that failed because an image it names could not be pulled with this
 * job's credentials: the registry refused them (401/403, `denied`, `unauthorized`; registries
 * answer so for another tenant's private repository). That does not change on another runner,
 * so the build fails for good (`build`) with a message that names the image, instead of being
 * retried as `infra`. Read from the last lines of buildah's or BuildKit's output; transport
 * errors, 5xx answers and missing manifests (a parent layer may be in flight) are not matched.
 */

/** Why a pull was refused, or null when the output shows no refused pull. */
export function pullRefusal(tail: readonly string[]): string | null {
  for (const [i, line] of tail.entries()) {
    const image = (/initializing source docker:\/\/(\S+?): /.exec(line) ??
      /failed to resolve source metadata for (\S+?): /.exec(line))?.[1];
    if (!image) continue;
    // The error's own lines: buildah lists a registry's errors on the lines after it, up to a blank one.
    const end = tail.findIndex((l, j) => j > i && (l.trim() === "" || l.startsWith("STEP ")));
    const error = tail.slice(i, end === -1 ? i + 6 : Math.min(end, i + 6));
    const refused = error.find((l) => REFUSED.test(l));
    if (refused) return `could not pull ${image}: the registry refused this job's credentials (${detail(refused)})`;
  }
  return null;
}

const REFUSED =
  /\b(?:denied|unauthorized|authentication required|insufficient[_ ]scope|forbidden)\b|\b40[13] (?:Unauthorized|Forbidden)\b/i;

/** The refusal's own words, without the tool's long prefix. */
function detail(line: string): string {
  const words = line.trim().replace(/^Error: /, "");
  const own = /(?:denied|unauthorized|forbidden)[^\n]*$/i.exec(words)?.[0] ?? words;
  return own.slice(0, 300);
}
