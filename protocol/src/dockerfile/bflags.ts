/**
 * Validation of an instruction's `--flags` against the flags it accepts (BuildKit's
 * `BFlags`): unknown, duplicate and malformed flags are errors.
 */

import { DockerfileError } from "./errors.ts";

type FlagType = "bool" | "string" | "strings";

interface Flag {
  type: FlagType;
  value: string;
  values: string[];
}

/** The flags one instruction accepts, and their values once {@link BFlags.parse} ran. */
export class BFlags {
  readonly #args: readonly string[];
  readonly #flags = new Map<string, Flag>();
  readonly #used = new Set<string>();

  /** `args` are the instruction's raw flags, e.g. `["--from=build", "--link"]`. */
  constructor(args: readonly string[]) {
    this.#args = args;
  }

  /** Declares a boolean flag (`--link`, `--link=false`). */
  addBool(name: string, def = false): void {
    this.#flags.set(name, { type: "bool", value: def ? "true" : "false", values: [] });
  }

  /** Declares a flag taking one value (`--from=x`). */
  addString(name: string, def = ""): void {
    this.#flags.set(name, { type: "string", value: def, values: [] });
  }

  /** Declares a flag that may repeat (`--mount=a --mount=b`). */
  addStrings(name: string): void {
    this.#flags.set(name, { type: "strings", value: "", values: [] });
  }

  /** The value of a string or bool flag (its default if not given). */
  string(name: string): string {
    return this.#flags.get(name)?.value ?? "";
  }

  /** True if a bool flag was given as true. */
  bool(name: string): boolean {
    return this.#flags.get(name)?.value === "true";
  }

  /** All values of a repeatable flag, in order. */
  strings(name: string): string[] {
    return [...(this.#flags.get(name)?.values ?? [])];
  }

  /** Names of the flags that were given, in the order declared. */
  used(): string[] {
    return [...this.#flags.keys()].filter((k) => this.#used.has(k));
  }

  /** Checks the raw flags against the declared ones and records their values. */
  parse(): void {
    for (const raw of this.#args) {
      if (!raw.startsWith("--")) throw new DockerfileError(`arg should start with -- : ${raw}`);
      if (raw === "--") return;
      let name = raw.slice(2);
      let value = "";
      const eq = name.indexOf("=");
      if (eq >= 0) {
        value = name.slice(eq + 1);
        name = name.slice(0, eq);
      }
      const flag = this.#flags.get(name);
      if (flag === undefined) {
        const known = [...this.#flags.keys()].map((k) => `--${k}`);
        throw new DockerfileError(`unknown flag: --${name}`, {
          hint: known.length === 0 ? "this instruction takes no flags" : `valid flags are ${known.join(", ")}`,
        });
      }
      if (this.#used.has(name) && flag.type !== "strings") {
        throw new DockerfileError(`duplicate flag specified: ${name}`, { hint: `give --${name} only once` });
      }
      this.#used.add(name);
      if (flag.type === "bool") {
        if (eq >= 0 && value === "") throw new DockerfileError(`missing a value on flag: ${name}`);
        const lower = value.toLowerCase();
        if (lower !== "" && lower !== "true" && lower !== "false") {
          throw new DockerfileError(`expecting boolean value for flag ${name}, not: ${value}`);
        }
        flag.value = lower === "" ? "true" : lower;
      } else {
        if (eq < 0) {
          throw new DockerfileError(`missing a value on flag: ${name}`, { hint: `write --${name}=<value>` });
        }
        if (flag.type === "string") flag.value = value;
        else flag.values.push(value);
      }
    }
  }
}
