/**
 * An ordered environment (BuildKit's `llb.EnvList`): what `$VAR` expands to at a given
 * point of a stage.
 */

import type { EnvGetter } from "./shell-expand.ts";

/** Ordered name/value pairs with case-sensitive lookup (Linux semantics). */
export class EnvList implements EnvGetter {
  readonly #vars: Map<string, string>;

  constructor(entries: Iterable<[string, string]> = []) {
    this.#vars = new Map(entries);
  }

  /** The value of `name`, or `undefined` when unset. */
  get(name: string): string | undefined {
    return this.#vars.get(name);
  }

  /** Whether `name` is set (possibly to ""). */
  has(name: string): boolean {
    return this.#vars.has(name);
  }

  /** Sets `name`, replacing an existing value in place. */
  set(name: string, value: string): void {
    this.#vars.set(name, value);
  }

  /** The pairs in insertion order. */
  entries(): [string, string][] {
    return [...this.#vars];
  }

  /** An independent copy. */
  clone(): EnvList {
    return new EnvList(this.#vars);
  }
}
