/**
 * Secrets: named, server-side secrets and inline dictionaries. Only names (and, for
 * inline dictionaries, key names) ever enter a layer definition or its key; values are
 * sent separately at build time and never hashed, logged or written to an image.
 */
import { createHash } from "node:crypto";
import { InvalidError } from "./errors.ts";

/** Options of `Secret.fromName`. */
export type SecretFromNameParams = {
  /** Keys the secret must hold; the server checks them when an image references it. */
  requiredKeys?: string[];
};

const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The server accepts at most this many required keys per secret (`requiredSecretKeys` of `POST /v1/images`). */
export const MAX_REQUIRED_KEYS = 256;

/** A reference to a secret whose values become environment variables of build steps. */
export class Secret {
  readonly #name: string | undefined;
  readonly #values: Readonly<Record<string, string>> | undefined;
  readonly #requiredKeys: readonly string[];

  private constructor(name: string | undefined, values: Record<string, string> | undefined, requiredKeys: string[]) {
    this.#name = name;
    this.#values = values;
    this.#requiredKeys = requiredKeys;
  }

  /** A secret stored on the Kiln server under `name` (see `kiln secret create`). */
  static fromName(name: string, params: SecretFromNameParams = {}): Secret {
    if (typeof name !== "string" || !SECRET_NAME.test(name)) {
      throw new InvalidError(
        `Invalid secret name: ${JSON.stringify(name)}. Names are 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit.`,
      );
    }
    const requiredKeys = params.requiredKeys ?? [];
    if (!Array.isArray(requiredKeys))
      throw new InvalidError(`Secret.fromName('${name}'): requiredKeys must be a list of environment variable names.`);
    for (const key of requiredKeys) assertEnvKey(key, "requiredKeys");
    const unique = [...new Set(requiredKeys)];
    assertRequiredKeyCount(name, unique.length);
    return new Secret(name, undefined, unique);
  }

  /** An inline secret from a dictionary; `null`/`undefined` values are dropped, as in Modal. */
  static fromDict(values: Record<string, string | null | undefined>): Secret {
    if (values === null || typeof values !== "object" || Array.isArray(values)) {
      throw new InvalidError("Secret.fromDict expects an object mapping environment variable names to strings.");
    }
    const kept: Record<string, string> = {};
    for (const [key, value] of Object.entries(values)) {
      assertEnvKey(key, "Secret.fromDict");
      if (value === null || value === undefined) continue;
      if (typeof value !== "string") {
        throw new InvalidError(`Secret.fromDict values must be strings. Invalid key: '${key}'.`);
      }
      kept[key] = value;
    }
    return new Secret(undefined, kept, []);
  }

  /**
   * The identity that enters layer definitions: the server-side name, or for an inline secret
   * `inline-` plus a hash of its sorted key names (never its values). `build()` stores an
   * inline secret's values under that name before submitting, so runners find them like any
   * named secret. As with named secrets, changing a value does not change layer keys.
   */
  get ref(): string {
    if (this.#name !== undefined) return this.#name;
    const keys = Object.keys(this.#values ?? {})
      .sort()
      .join(",");
    return `inline-${createHash("sha256").update(keys).digest("hex").slice(0, 32)}`;
  }

  /** The server-side name, or undefined for an inline secret. */
  get name(): string | undefined {
    return this.#name;
  }

  /** Keys the server must find in a named secret. */
  get requiredKeys(): readonly string[] {
    return this.#requiredKeys;
  }

  /** Values of an inline secret, for the transport only; undefined for named secrets. */
  inlineValues(): Readonly<Record<string, string>> | undefined {
    return this.#values;
  }

  /** Source-like text for messages, e.g. `Secret.fromName('gh')`. Never shows values. */
  toString(): string {
    if (this.#name !== undefined) return `Secret.fromName('${this.#name}')`;
    return `Secret.fromDict({${Object.keys(this.#values ?? {})
      .sort()
      .join(", ")}})`;
  }
}

/**
 * The `requiredSecretKeys` of an image submission: for every named secret among `secrets`, the
 * union of the keys its references require, names and keys sorted (the same image always sends
 * the same body). Secrets that require nothing are left out. Inline secrets need no entry: they
 * are stored with exactly their keys just before the submission, under a name derived from them.
 */
export function requiredSecretKeys(secrets: Iterable<Secret>): Record<string, string[]> {
  const byName = new Map<string, Set<string>>();
  for (const secret of secrets) {
    if (secret.name === undefined || secret.requiredKeys.length === 0) continue;
    const keys = byName.get(secret.name) ?? new Set<string>();
    for (const key of secret.requiredKeys) keys.add(key);
    byName.set(secret.name, keys);
  }
  const out: Record<string, string[]> = {};
  for (const name of [...byName.keys()].sort()) {
    const keys = [...byName.get(name)!].sort();
    assertRequiredKeyCount(name, keys.length);
    out[name] = keys;
  }
  return out;
}

function assertRequiredKeyCount(name: string, count: number): void {
  if (count > MAX_REQUIRED_KEYS) {
    throw new InvalidError(
      `Secret '${name}' has ${count} required keys across the image; the server accepts at most ${MAX_REQUIRED_KEYS} per secret. Require fewer keys.`,
    );
  }
}

function assertEnvKey(key: unknown, where: string): void {
  if (typeof key !== "string" || !ENV_KEY.test(key)) {
    throw new InvalidError(`${where}: ${JSON.stringify(key)} is not a valid environment variable name.`);
  }
}

/** Validates a `secrets` parameter and appends `env` as an inline secret, as Modal does. */
export function collectSecrets(secrets: unknown, env?: Record<string, string | null | undefined>): Secret[] {
  const list = secrets ?? [];
  if (!Array.isArray(list) || !list.every((s) => s instanceof Secret)) {
    throw new InvalidError("All secrets of an Image need to be Secret instances (Secret.fromName or Secret.fromDict).");
  }
  // An env of only null/undefined values adds nothing, so it adds no (empty) secret either.
  const inline = env === undefined ? undefined : Secret.fromDict(env);
  return inline && Object.keys(inline.inlineValues() ?? {}).length > 0 ? [...list, inline] : [...list];
}
