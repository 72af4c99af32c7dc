/**
 * BuildKit's rule for the JSON ("exec") form of an instruction: the arguments are JSON
 * only if they decode, with Go's `encoding/json`, to an array of strings.
 */

import { trimLeftSpace } from "./text.ts";

/** Outcome of trying to read instruction arguments as a JSON array. */
export type JsonArgs = { kind: "json"; values: string[] } | { kind: "not-json" } | { kind: "not-string-array" };

/** The error BuildKit raises for a JSON array that holds anything but strings. */
export const NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only";

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Reads `rest` as a JSON array of strings. Anything that does not decode is "not-json"
 * (BuildKit then falls back to the shell form); a valid array holding a non-string is an
 * error BuildKit reports, so it gets its own outcome.
 */
export function parseJsonArgs(rest: string): JsonArgs {
  const trimmed = trimLeftSpace(rest);
  if (!trimmed.startsWith("[")) return { kind: "not-json" };
  let decoded: unknown;
  try {
    decoded = JSON.parse(trimmed);
  } catch {
    return { kind: "not-json" };
  }
  if (!Array.isArray(decoded)) return { kind: "not-json" };
  // Go fails to decode a number that overflows float64, which makes the whole argument
  // "not JSON" rather than "not a string array".
  if (hasOverflow(decoded)) return { kind: "not-json" };
  const values: string[] = [];
  for (const item of decoded) {
    if (typeof item !== "string") return { kind: "not-string-array" };
    // Go decodes an unpaired \uD800-style escape to U+FFFD.
    values.push(item.replace(LONE_SURROGATE, "\ufffd"));
  }
  return { kind: "json", values };
}

function hasOverflow(value: unknown): boolean {
  if (typeof value === "number") return !Number.isFinite(value);
  if (Array.isArray(value)) return value.some(hasOverflow);
  if (value !== null && typeof value === "object") return Object.values(value).some(hasOverflow);
  return false;
}
