/**
 * Run-time checks of options objects against `PARAM_KEYS` (image-params.ts): a misspelt key
 * is an error naming the nearest valid one, and an option Modal has but Kiln does not
 * support is refused with the reason, so nothing a caller passes is silently ignored.
 */
import { InvalidError } from "./errors.ts";
import { PARAM_KEYS, type ParamMethod, UNSUPPORTED_PARAMS } from "./image-params.ts";

/** Throws `InvalidError` unless `params` is undefined or a plain object holding only keys `method` accepts. */
export function checkParams(method: ParamMethod, params: unknown): void {
  if (params === undefined) return;
  if (params === null || typeof params !== "object" || Array.isArray(params)) {
    throw new InvalidError(`${method}: options must be an object, not ${params === null ? "null" : typeof params}.`);
  }
  checkKeys(method, Object.keys(params), PARAM_KEYS[method]);
}

/** Checks `given` against `allowed`; `method` names the caller in the message. */
export function checkKeys(method: string, given: readonly string[], allowed: readonly string[]): void {
  for (const key of given) {
    if (allowed.includes(key)) continue;
    const why = Object.hasOwn(UNSUPPORTED_PARAMS, key) ? UNSUPPORTED_PARAMS[key] : undefined;
    if (why) throw new InvalidError(`${method}: option \`${key}\` is not supported by Kiln (${why}).`);
    const near = nearest(key, allowed);
    const hint = near ? ` Did you mean ${near}?` : ` Valid options: ${allowed.join(", ") || "none"}.`;
    throw new InvalidError(`${method}: unknown option \`${key}\`.${hint}`);
  }
}

/** The allowed key closest to `key` (case-insensitive edit distance), or null when none is close. */
export function nearest(key: string, allowed: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of allowed) {
    const d = distance(key.toLowerCase().replace(/_/g, ""), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== null && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : null;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
