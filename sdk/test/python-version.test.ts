import { describe, expect, it } from "vitest";
import { InvalidError } from "../src/errors.ts";
import { addPythonCommands, dockerHubPythonVersion, pythonStandalone, validatePythonVersion } from "../src/python-version.ts";

const debian = { allowMicro: true, allowFreeThreading: false, caller: "Image.debianSlim" };

describe("validatePythonVersion", () => {
  it.each(["3.10", "3.11", "3.12", "3.13", "3.14", "3.12.4"])("accepts %s on 2025.06", (v) => {
    expect(validatePythonVersion(v, "2025.06", debian)).toBe(v);
  });

  it.each([
    ["3", "2025.06", "Invalid Python version: '3'"],
    ["3.x", "2025.06", "Invalid Python version: '3.x'"],
    ["2.7", "2025.06", "Invalid Python version: '2.7'"],
    [
      "3.9",
      "2025.06",
      "Unsupported Python version: '3.9'. When using the '2025.06' Image builder, Kiln supports the following series: ['3.10', '3.11', '3.12', '3.13', '3.14', '3.14t'].",
    ],
    ["3.13", "2024.04", "Unsupported Python version: '3.13'. When using the '2024.04' Image builder"],
    // Passes the pattern, then fails the series check, as in Modal.
    ["3.12rc1", "2025.06", "Unsupported Python version: '3.12rc1'."],
    ["3.14t", "2025.06", "Free threaded Python is not supported with Image.debianSlim"],
  ] as const)("rejects %s on %s", (version, builder, message) => {
    expect(() => validatePythonVersion(version, builder, debian)).toThrow(InvalidError);
    expect(() => validatePythonVersion(version, builder, debian)).toThrow(message);
  });

  it("rejects micro versions where only a series is allowed", () => {
    expect(() => validatePythonVersion("3.11.2", "2025.06", { allowMicro: false, allowFreeThreading: false })).toThrow(
      "Python version must be specified as 'major.minor' for this interface; micro-level specification ('3.11.2') is not valid.",
    );
  });

  it("rejects non-strings with a typed error", () => {
    expect(() => validatePythonVersion(3.12, "2025.06", debian)).toThrow("The `pythonVersion` argument should be a string, not a number.");
  });
});

describe("dockerHubPythonVersion", () => {
  it.each([
    ["3.12", "2025.06", "3.12.10"],
    ["3.14", "2025.06", "3.14.2"],
    ["3.11", "2024.10", "3.11.10"],
    ["3.10", "2023.12", "3.10.8"],
    ["3.12.4", "2025.06", "3.12.4"],
  ] as const)("pins %s on %s to %s", (v, b, expected) => {
    expect(dockerHubPythonVersion(v, b)).toBe(expected);
  });
});

describe("pythonStandalone", () => {
  it("resolves a series to its python-build-standalone release", () => {
    expect(pythonStandalone("3.11", "2025.06")).toEqual({ series: "3.11", release: "20230826", version: "3.11.5", libc: "gnu" });
    expect(pythonStandalone("3.14t", "2025.06")).toEqual({ series: "3.14t", release: "20251209", version: "3.14.2t", libc: "gnu" });
  });

  it("rejects musl, micro versions and unknown series", () => {
    expect(() => pythonStandalone("3.12-musl", "2025.06")).toThrow("Unsupported libc identifier: musl");
    expect(() => pythonStandalone("3.11.5", "2025.06")).toThrow("micro-level specification ('3.11.5') is not valid.");
    expect(() => pythonStandalone("3.9", "2025.06")).toThrow("Unsupported Python version: '3.9'");
  });

  it("adds a python symlink only below 3.13", () => {
    expect(addPythonCommands(pythonStandalone("3.12", "2025.06"))).toEqual([
      "COPY /python/. /usr/local",
      "RUN ln -s /usr/local/bin/python3 /usr/local/bin/python",
      "ENV TERMINFO_DIRS=/etc/terminfo:/lib/terminfo:/usr/share/terminfo:/usr/lib/terminfo",
    ]);
    expect(addPythonCommands(pythonStandalone("3.13", "2025.06"))).toEqual([
      "COPY /python/. /usr/local",
      "ENV TERMINFO_DIRS=/etc/terminfo:/lib/terminfo:/usr/share/terminfo:/usr/lib/terminfo",
    ]);
  });
});
