/**
 * Python version validation and pinning, with Modal's rules and messages
 * (adapted to Kiln's names). Pure: no I/O.
 */
import { type BuilderVersion, pyListRepr, versionFacts } from "@kiln-build/protocol";
import { InvalidError } from "./errors.ts";

const PYTHON_VERSION = /^3(?:\.\d{1,2}){1,2}(rc\d*)?t?$/;

/** Rules a caller applies to a Python version string. */
export type PythonVersionRules = {
  allowMicro: boolean;
  allowFreeThreading: boolean;
  /** Named in the free-threading error, e.g. `Image.debianSlim`. */
  caller?: string;
};

/** Validates a Python version for a builder version and returns it unchanged. */
export function validatePythonVersion(version: unknown, builderVersion: BuilderVersion, rules: PythonVersionRules): string {
  if (typeof version !== "string") {
    throw new InvalidError(`The \`pythonVersion\` argument should be a string, not a ${typeof version}. Pass it like "3.12".`);
  }
  if (!PYTHON_VERSION.test(version)) throw new InvalidError(`Invalid Python version: '${version}'`);
  const components = version.split(".");
  if (components.length === 3 && !rules.allowMicro) {
    throw new InvalidError(
      `Python version must be specified as 'major.minor' for this interface; micro-level specification ('${version}') is not valid.`,
    );
  }
  const series = `${components[0]}.${components[1]}`;
  const supported = versionFacts(builderVersion).supportedSeries;
  if (!supported.includes(series)) {
    throw new InvalidError(
      `Unsupported Python version: '${version}'. When using the '${builderVersion}' Image builder, ` +
        `Kiln supports the following series: ${pyListRepr(supported)}.`,
    );
  }
  if (version.endsWith("t") && !rules.allowFreeThreading) {
    const context = rules.caller ? ` with ${rules.caller}` : "";
    throw new InvalidError(`Free threaded Python is not supported${context}`);
  }
  return version;
}

/** The Docker Hub `python:` tag's version: `X.Y` is pinned to the builder's micro release. */
export function dockerHubPythonVersion(version: string, builderVersion: BuilderVersion): string {
  const components = version.split(".");
  if (components.length === 3) return version;
  const pinned = versionFacts(builderVersion).pythonPins[version];
  if (!pinned) throw new InvalidError(`No pinned micro release of Python ${version} for builder ${builderVersion}.`);
  return pinned;
}

/** A python-build-standalone release that `addPython` copies to `/usr/local`. */
export type PythonStandalone = { series: string; release: string; version: string; libc: "gnu" };

// Release dates and versions of astral-sh/python-build-standalone, as Modal pins them.
const STANDALONE: Readonly<Record<string, { release: string; version: string }>> = {
  "3.10": { release: "20230826", version: "3.10.13" },
  "3.11": { release: "20230826", version: "3.11.5" },
  "3.12": { release: "20240107", version: "3.12.1" },
  "3.13": { release: "20241008", version: "3.13.0" },
  "3.14": { release: "20251205", version: "3.14.2" },
  "3.14t": { release: "20251209", version: "3.14.2t" },
};

/** Resolves an `addPython` series (optionally `-gnu` / `-musl`) to its standalone release. */
export function pythonStandalone(addPython: string, builderVersion: BuilderVersion): PythonStandalone {
  const [series = "", libc = "gnu", ...rest] = addPython.split("-");
  if (rest.length > 0 || libc !== "gnu") {
    throw new InvalidError(`Unsupported libc identifier: ${libc}. Kiln ships glibc ("gnu") Python builds only.`);
  }
  validatePythonVersion(series, builderVersion, { allowMicro: false, allowFreeThreading: true });
  const entry = STANDALONE[series];
  if (!entry) {
    throw new InvalidError(
      `Unsupported standalone python version: '${series}', supported values are ${pyListRepr(Object.keys(STANDALONE))}`,
    );
  }
  return { series, release: entry.release, version: entry.version, libc: "gnu" };
}

/** Dockerfile lines that install a standalone Python copied into the context at `/python`. */
export function addPythonCommands(standalone: PythonStandalone): string[] {
  const minor = Number(standalone.series.replace(/t$/, "").split(".")[1]);
  return [
    "COPY /python/. /usr/local",
    ...(minor < 13 ? ["RUN ln -s /usr/local/bin/python3 /usr/local/bin/python"] : []),
    "ENV TERMINFO_DIRS=/etc/terminfo:/lib/terminfo:/usr/share/terminfo:/usr/lib/terminfo",
  ];
}
