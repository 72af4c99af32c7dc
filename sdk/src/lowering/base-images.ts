/**
 * Dockerfile lines of root layers: debianSlim, micromamba and registry images.
 *
 * Builders up to 2024.10 made Modal copy its own client requirements into every base
 * image; Kiln has no in-image client, so those steps are left out for every version
 * (docs/differences-from-modal.md).
 */
import { type BuilderVersion, versionAtMost, versionFacts } from "@kiln-build/protocol";
import { dockerHubPythonVersion } from "../python-version.ts";
import type { LoweredLayer } from "./types.ts";

// Builder 2025.06 keeps sandboxes built from base images alive for 48 h.
const KEEP_ALIVE_CMD = 'CMD ["sleep", "172800"]';

function keepAlive(version: BuilderVersion): string[] {
  return versionAtMost(version, "2024.10") ? [] : [KEEP_ALIVE_CMD];
}

/** `Image.debianSlim`: the official `python:<version>-slim-<debian>` image plus build tools. */
export function debianSlimLayer(pythonVersion: string, version: BuilderVersion): LoweredLayer {
  const full = dockerHubPythonVersion(pythonVersion, version);
  const packageTools = version === "2023.12" ? "pip" : "pip wheel uv";
  return {
    commands: [
      `FROM python:${full}-slim-${versionFacts(version).debian}`,
      "RUN apt-get update",
      "RUN apt-get install -y gcc gfortran build-essential",
      `RUN pip install --upgrade ${packageTools}`,
      "RUN echo 'debconf debconf/frontend select Noninteractive' | debconf-set-selections",
      ...keepAlive(version),
    ],
    context: [],
  };
}

/** `Image.micromamba`: the micromamba image with Python from conda-forge. */
export function micromambaLayer(pythonSeries: string, version: BuilderVersion): LoweredLayer {
  return {
    commands: [
      `FROM mambaorg/micromamba:${versionFacts(version).micromambaTag}`,
      'SHELL ["/usr/local/bin/_dockerfile_shell.sh"]',
      "ENV MAMBA_DOCKERFILE_ACTIVATE=1",
      `RUN micromamba install -n base -y python=${pythonSeries} pip -c conda-forge`,
      ...keepAlive(version),
    ],
    context: [],
  };
}

/**
 * Registry images: `FROM <tag>`, then setup commands. `addPython` lines go right after the
 * `FROM` line; `describeImage` inserts them for every layer that asks for a Python.
 */
export function registryLayer(tag: string, setupCommands: readonly string[]): LoweredLayer {
  return { commands: [`FROM ${tag}`, ...setupCommands], context: [] };
}
