/**
 * Image builder versions and the per-version facts that change Dockerfile output:
 * pinned Python micro versions, Debian codename, micromamba tag, supported series.
 * The values follow Modal's `base-images.json` and `SUPPORTED_PYTHON_SERIES`.
 */
import { VersionError } from "./errors.ts";

/** Every image builder version Kiln can lower layers for, oldest first. */
export const BUILDER_VERSIONS = ["2023.12", "2024.04", "2024.10", "2025.06", "PREVIEW"] as const;

/** One image builder version, e.g. `"2025.06"`. */
export type BuilderVersion = (typeof BUILDER_VERSIONS)[number];

/** The builder version used when neither the call nor the environment names one. */
export const DEFAULT_BUILDER_VERSION: BuilderVersion = "2025.06";

/**
 * Python series used by `debianSlim()` and `micromamba()` without a version. Modal uses
 * the caller's own interpreter; a TypeScript caller has none, so Kiln picks the newest
 * series with broad wheel coverage that every builder version supports.
 */
export const DEFAULT_PYTHON_SERIES = "3.12";

type VersionFacts = {
  pythonPins: Readonly<Record<string, string>>;
  debian: string;
  micromambaTag: string;
  supportedSeries: readonly string[];
};

const FACTS: Readonly<Record<BuilderVersion, VersionFacts>> = {
  "2023.12": {
    pythonPins: { "3.10": "3.10.8", "3.11": "3.11.0", "3.12": "3.12.1" },
    debian: "bullseye",
    micromambaTag: "1.3.1-bullseye-slim",
    supportedSeries: ["3.10", "3.11", "3.12"],
  },
  "2024.04": {
    pythonPins: { "3.10": "3.10.14", "3.11": "3.11.8", "3.12": "3.12.2" },
    debian: "bookworm",
    micromambaTag: "1.5.8-bookworm-slim",
    supportedSeries: ["3.10", "3.11", "3.12"],
  },
  "2024.10": {
    pythonPins: { "3.10": "3.10.15", "3.11": "3.11.10", "3.12": "3.12.6", "3.13": "3.13.0" },
    debian: "bookworm",
    micromambaTag: "1.5.10-bookworm-slim",
    supportedSeries: ["3.10", "3.11", "3.12", "3.13"],
  },
  "2025.06": {
    pythonPins: { "3.10": "3.10.17", "3.11": "3.11.12", "3.12": "3.12.10", "3.13": "3.13.3", "3.14": "3.14.2" },
    debian: "bookworm",
    micromambaTag: "2.1.1-debian12-slim",
    supportedSeries: ["3.10", "3.11", "3.12", "3.13", "3.14", "3.14t"],
  },
  PREVIEW: {
    pythonPins: { "3.10": "3.10.17", "3.11": "3.11.12", "3.12": "3.12.10", "3.13": "3.13.3", "3.14": "3.14.2" },
    debian: "bookworm",
    micromambaTag: "2.1.1-debian12-slim",
    supportedSeries: ["3.10", "3.11", "3.12", "3.13", "3.14", "3.14t"],
  },
};

/** The per-version facts that Dockerfile lowering depends on. */
export function versionFacts(version: BuilderVersion): VersionFacts {
  return FACTS[version];
}

/** Whether `version` is at or before `other` in release order (`PREVIEW` is newest). */
export function versionAtMost(version: BuilderVersion, other: BuilderVersion): boolean {
  return BUILDER_VERSIONS.indexOf(version) <= BUILDER_VERSIONS.indexOf(other);
}

/** Python's `repr()` of a list of strings, used where Modal's messages print lists. */
export function pyListRepr(items: readonly string[]): string {
  return `[${items.map((s) => `'${s}'`).join(", ")}]`;
}

/**
 * Resolves the builder version: an explicit argument wins, then `KILN_IMAGE_BUILDER_VERSION`,
 * then the default. Throws `VersionError` naming where the bad value came from.
 */
export function resolveBuilderVersion(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>> = processEnv(),
): BuilderVersion {
  const fromEnv = env.KILN_IMAGE_BUILDER_VERSION;
  const [value, source] =
    explicit !== undefined
      ? [explicit, "the `builderVersion` argument"]
      : fromEnv
        ? [fromEnv, "your `KILN_IMAGE_BUILDER_VERSION` environment variable"]
        : [DEFAULT_BUILDER_VERSION, "the SDK default"];
  if ((BUILDER_VERSIONS as readonly string[]).includes(value)) return value as BuilderVersion;
  const supported = `{${[...BUILDER_VERSIONS]
    .sort()
    .map((v) => `'${v}'`)
    .join(", ")}}`;
  throw new VersionError(
    `This version of the Kiln SDK supports the following image builder versions: ${supported}.\n\n` +
      `You are using '${value}' (based on ${source}). Please update or remove your local configuration.`,
  );
}

/** Boolean settings parse like Modal's: anything but "", "0" or "false" (any case) is true. */
export function envFlag(value: string | undefined): boolean {
  if (value === undefined) return false;
  return !["", "0", "false"].includes(value.trim().toLowerCase());
}

/** `process.env` where it exists (Node), an empty object elsewhere (the Worker). */
export function processEnv(): Readonly<Record<string, string | undefined>> {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  return g.process?.env ?? {};
}
