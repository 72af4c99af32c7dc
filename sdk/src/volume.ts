/**
 * `Volume`: Modal's persistent volume, which in Kiln is a build cache mount. A volume passed
 * to `runCommands(..., { volumes: { "/root/.cache/pip": Volume.fromName("pip-cache") } })`
 * lowers to `RUN --mount=type=cache,id=pip-cache,target=/root/.cache/pip ...`: the directory
 * persists between the builds of one workspace on a runner (never across workspaces, never in
 * the image). The layer key covers the mount declaration, not its contents.
 */
import { InvalidError } from "./errors.ts";

// Modal's volume names: letters, digits, `-`, `_` and `.`, at most 64 characters. They go into
// a `--mount` flag, so anything else (`,`, `=`, spaces) must be refused anyway.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Options of `Volume.fromName` (Modal's `create_if_missing` and friends have nothing to do here). */
export type VolumeFromNameParams = Record<string, never>;

/** A named build cache (Modal's `Volume`). */
export class Volume {
  /** The cache's name: the `id` of its cache mount. */
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /**
   * A build cache by name. Builds of one workspace that mount the same name share its contents.
   *
   * @example
   * Image.debianSlim().runCommands("pip download torch -d /root/.cache/pip", { volumes: { "/root/.cache/pip": Volume.fromName("pip-cache") } });
   */
  static fromName(name: string, params: VolumeFromNameParams = {}): Volume {
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new InvalidError(
        `Volume.fromName: invalid name ${JSON.stringify(name)}: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit.`,
      );
    }
    if (params !== undefined && (typeof params !== "object" || params === null || Object.keys(params).length > 0)) {
      throw new InvalidError("Volume.fromName takes no options in Kiln: a build cache is created on first use.");
    }
    return new Volume(name);
  }
}

// A cache mount target: an absolute POSIX path with no `,`, `=`, quotes or whitespace (it goes into a `--mount` flag), no `.`/`..` parts.
const TARGET = /^\/[^\s,="'\\]*$/;

/** The `--mount=type=cache` flags of `volumes` (Modal's `{ path: Volume }`), sorted by path so the layer key is stable. */
export function cacheMountFlags(method: string, volumes: unknown): string[] {
  if (volumes === undefined) return [];
  if (volumes === null || typeof volumes !== "object" || Array.isArray(volumes)) {
    throw new InvalidError(`${method}: volumes must be an object of { "/path": Volume.fromName("name") }.`);
  }
  const entries = Object.entries(volumes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.map(([target, volume]) => {
    if (!TARGET.test(target) || target.split("/").some((part) => part === "." || part === "..") || target === "/") {
      throw new InvalidError(
        `${method}: volume path ${JSON.stringify(target)} must be an absolute path (not /) without spaces, commas, '=' or quotes.`,
      );
    }
    if (!(volume instanceof Volume)) {
      throw new InvalidError(
        `${method}: volumes[${JSON.stringify(target)}] must be a Volume (Volume.fromName("name")); Kiln mounts it as a build cache.`,
      );
    }
    return `--mount=type=cache,id=${volume.name},target=${target}`;
  });
}
