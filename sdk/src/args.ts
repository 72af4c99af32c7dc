/** Argument conventions shared by the builder methods (Python varargs and keyword params). */
import { InvalidError } from "./errors.ts";

/**
 * Splits `(...items, params?)`: Python varargs become rest arguments, and a trailing plain
 * object holds the keyword arguments (`pipInstall(["torch"], { indexUrl })`).
 */
export function splitParams<P extends object>(args: readonly unknown[]): { items: unknown[]; params: Partial<P> } {
  const last = args.at(-1);
  if (last !== null && typeof last === "object" && !Array.isArray(last)) {
    return { items: args.slice(0, -1), params: last as Partial<P> };
  }
  return { items: [...args], params: {} };
}

/** Flattens strings and arrays of strings one level, as Modal's `_flatten_str_args` does. */
export function flattenStrings(method: string, argName: string, items: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const item of items) {
    const group = Array.isArray(item) ? item : [item];
    for (const value of group) {
      if (typeof value !== "string") throw new InvalidError(`${method}: ${argName} must only contain strings`);
      out.push(value);
    }
  }
  return out;
}

/** Python's `sorted()` on strings: by code point, so astral characters sort as in Python. */
export function pySorted(values: readonly string[]): string[] {
  return [...values].sort((a, b) => {
    const x = [...a];
    const y = [...b];
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
      if (d !== 0) return d;
    }
    return x.length - y.length;
  });
}

/** Throws unless `value` is an array of strings; `message` says what was expected. */
export function assertStringList(value: unknown, message: string): asserts value is string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw new InvalidError(message);
}
