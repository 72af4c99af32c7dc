import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Image, InvalidError, NotFoundError, Secret } from "../src/index.ts";

const DEBIAN_2025 = [
  "FROM python:3.12.10-slim-bookworm",
  "RUN apt-get update",
  "RUN apt-get install -y gcc gfortran build-essential",
  "RUN pip install --upgrade pip wheel uv",
  "RUN echo 'debconf debconf/frontend select Noninteractive' | debconf-set-selections",
  'CMD ["sleep", "172800"]',
];

async function lines(image: Image, builderVersion?: string) {
  return (await image.describe({ builderVersion })).layers.map((l) => l.dockerfileCommands);
}

describe("Image.debianSlim", () => {
  it("defaults to Python 3.12 on builder 2025.06", async () => {
    expect(await lines(Image.debianSlim())).toEqual([DEBIAN_2025]);
  });

  it("pins a series and keeps a micro version verbatim", async () => {
    expect((await lines(Image.debianSlim("3.11")))[0]![0]).toBe("FROM python:3.11.12-slim-bookworm");
    expect((await lines(Image.debianSlim({ pythonVersion: "3.13.1" })))[0]![0]).toBe("FROM python:3.13.1-slim-bookworm");
  });

  it("follows older builder versions: bullseye and pip only on 2023.12, no CMD before 2025.06", async () => {
    expect(await lines(Image.debianSlim("3.10"), "2023.12")).toEqual([
      [
        "FROM python:3.10.8-slim-bullseye",
        "RUN apt-get update",
        "RUN apt-get install -y gcc gfortran build-essential",
        "RUN pip install --upgrade pip",
        "RUN echo 'debconf debconf/frontend select Noninteractive' | debconf-set-selections",
      ],
    ]);
    expect((await lines(Image.debianSlim("3.12"), "2024.10"))[0]).toEqual([
      "FROM python:3.12.6-slim-bookworm",
      "RUN apt-get update",
      "RUN apt-get install -y gcc gfortran build-essential",
      "RUN pip install --upgrade pip wheel uv",
      "RUN echo 'debconf debconf/frontend select Noninteractive' | debconf-set-selections",
    ]);
  });

  it("validates synchronously and again for the described builder version", async () => {
    expect(() => Image.debianSlim("3.9")).toThrow(InvalidError);
    expect(() => Image.debianSlim("3.14t")).toThrow("Free threaded Python is not supported with Image.debianSlim");
    await expect(Image.debianSlim("3.14").describe({ builderVersion: "2024.10" })).rejects.toThrow(
      "Unsupported Python version: '3.14'. When using the '2024.10' Image builder",
    );
  });

  it("carries forceBuild", async () => {
    const { layers } = await Image.debianSlim("3.12", { forceBuild: true }).describe();
    expect(layers[0]!.forceBuild).toBe(true);
  });
});

describe("Image.micromamba", () => {
  it("emits the micromamba setup for 2025.06", async () => {
    expect(await lines(Image.micromamba("3.11"))).toEqual([
      [
        "FROM mambaorg/micromamba:2.1.1-debian12-slim",
        'SHELL ["/usr/local/bin/_dockerfile_shell.sh"]',
        "ENV MAMBA_DOCKERFILE_ACTIVATE=1",
        "RUN micromamba install -n base -y python=3.11 pip -c conda-forge",
        'CMD ["sleep", "172800"]',
      ],
    ]);
    expect((await lines(Image.micromamba("3.10"), "2024.04"))[0]![0]).toBe("FROM mambaorg/micromamba:1.5.8-bookworm-slim");
  });

  it("rejects micro versions and free-threaded Python", () => {
    expect(() => Image.micromamba("3.11.2")).toThrow("micro-level specification ('3.11.2') is not valid.");
    expect(() => Image.micromamba("3.14t")).toThrow("Free threaded Python is not supported with Image.micromamba");
  });
});

describe("Image.fromRegistry and the cloud registries", () => {
  it("emits only FROM for a plain registry image on 2025.06", async () => {
    const { layers } = await Image.fromRegistry("ubuntu:22.04").describe();
    expect(layers.map((l) => l.dockerfileCommands)).toEqual([["FROM ubuntu:22.04"]]);
    expect(layers[0]!.registryAuth).toBeNull();
  });

  it("adds python-build-standalone before the setup commands", async () => {
    const image = Image.fromRegistry("ubuntu:22.04", { addPython: "3.11", setupDockerfileCommands: ["RUN echo setup"] });
    const { layers } = await image.describe();
    expect(layers[0]!.dockerfileCommands).toEqual([
      "FROM ubuntu:22.04",
      "COPY /python/. /usr/local",
      "RUN ln -s /usr/local/bin/python3 /usr/local/bin/python",
      "ENV TERMINFO_DIRS=/etc/terminfo:/lib/terminfo:/usr/share/terminfo:/usr/lib/terminfo",
      "RUN echo setup",
    ]);
    expect(layers[0]!.pythonStandalone).toEqual({ series: "3.11", release: "20230826", version: "3.11.5", libc: "gnu" });
  });

  it("records the registry auth kind and secret name, never as a layer secret", async () => {
    const secret = Secret.fromName("dockerhub");
    const { layers } = await Image.fromRegistry("private/app:1", { secret }).describe();
    expect(layers[0]!.registryAuth).toEqual({ kind: "static", secret: "dockerhub" });
    expect(layers[0]!.secrets).toEqual([]);
    const gcp = await Image.fromGcpArtifactRegistry("us-east1-docker.pkg.dev/p/r/i:1", Secret.fromName("gcp")).describe();
    expect(gcp.layers[0]!.registryAuth).toEqual({ kind: "gcp", secret: "gcp" });
    const ecr = await Image.fromAwsEcr("000000000000.dkr.ecr.us-east-1.amazonaws.com/app:1", { secret: Secret.fromName("aws") }).describe();
    expect(ecr.layers[0]!.registryAuth).toEqual({ kind: "aws", secret: "aws" });
  });

  it("rejects unsupported hosts, missing secrets and `secrets`", () => {
    expect(() => Image.fromAwsEcr("docker.io/library/ubuntu", Secret.fromName("aws"))).toThrow("unsupported registry host 'docker.io'");
    expect(() => Image.fromGcpArtifactRegistry("quay.io/x/y", Secret.fromName("g"))).toThrow(InvalidError);
    expect(() => Image.fromGcpArtifactRegistry("gcr.io/p/i")).toThrow("needs a registry secret holding SERVICE_ACCOUNT_JSON");
    expect(() =>
      Image.fromAwsEcr("000000000000.dkr.ecr.us-east-1.amazonaws.com/app", { secret: Secret.fromName("a"), secrets: [] } as never),
    ).toThrow("takes one registry `secret`, not `secrets`");
    expect(() => Image.fromRegistry("has space")).toThrow(InvalidError);
    expect(() => Image.fromRegistry("x", { addPython: "3.12-musl" })).toThrow("Unsupported libc identifier: musl");
  });
});

describe("Image.fromScratch", () => {
  it("is FROM scratch", async () => {
    expect(await lines(Image.fromScratch())).toEqual([["FROM scratch"]]);
  });
});

describe("Image.fromDockerfile", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-dockerfile-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("builds two layers: the raw Dockerfile, then FROM base with addPython", async () => {
    const text = "# syntax=docker/dockerfile:1\nFROM alpine:3.20 AS build\nRUN echo hi \\\n  there\nCOPY src /src\n";
    fs.writeFileSync(path.join(dir, "Dockerfile"), text);
    fs.mkdirSync(path.join(dir, "src"));
    fs.writeFileSync(path.join(dir, "src", "main.txt"), "main");
    fs.writeFileSync(path.join(dir, "unrelated.txt"), "not sent");
    const image = Image.fromDockerfile(path.join(dir, "Dockerfile"), {
      contextDir: dir,
      addPython: "3.13",
      buildArgs: { V: "1" },
      gpu: "T4",
    });
    const { layers } = await image.describe();
    expect(layers).toHaveLength(2);
    expect(layers[0]!.dockerfileCommands).toEqual(text.split("\n"));
    expect(layers[0]!.dockerfileCommands.at(-1)).toBe("");
    expect(layers[0]!.contextFiles.map((f) => f.path)).toEqual(["src/main.txt"]);
    expect(layers[0]!.buildArgs).toEqual({ V: "1" });
    expect(layers[0]!.gpu).toEqual({ type: "T4", count: 1 });
    expect(layers[1]!.dockerfileCommands).toEqual([
      "FROM base",
      "COPY /python/. /usr/local",
      "ENV TERMINFO_DIRS=/etc/terminfo:/lib/terminfo:/usr/share/terminfo:/usr/lib/terminfo",
    ]);
  });

  it("applies the Dockerfile's own .dockerignore over the context's", async () => {
    fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM alpine\nCOPY . /app\n");
    fs.writeFileSync(path.join(dir, "Dockerfile.dockerignore"), "# comment\n*.log\n");
    fs.writeFileSync(path.join(dir, ".dockerignore"), "keep.txt\n");
    fs.writeFileSync(path.join(dir, "keep.txt"), "k");
    fs.writeFileSync(path.join(dir, "drop.log"), "d");
    const { layers } = await Image.fromDockerfile(path.join(dir, "Dockerfile"), { contextDir: dir }).describe();
    const paths = layers[0]!.contextFiles.map((f) => f.path);
    expect(paths).toContain("keep.txt");
    expect(paths).not.toContain("drop.log");
  });

  it("forces both layers when forceBuild is set", async () => {
    fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM alpine\n");
    const { layers } = await Image.fromDockerfile(path.join(dir, "Dockerfile"), { forceBuild: true }).describe();
    expect(layers.map((l) => l.forceBuild)).toEqual([true, true]);
  });

  it("reports a missing Dockerfile or context dir", () => {
    expect(() => Image.fromDockerfile(path.join(dir, "nope"))).toThrow(NotFoundError);
    fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM alpine\n");
    expect(() => Image.fromDockerfile(path.join(dir, "Dockerfile"), { contextDir: path.join(dir, "missing") })).toThrow(NotFoundError);
  });
});

describe("Image.fromId", () => {
  it("validates the id before any network call", async () => {
    await expect(Image.fromId("bad id")).rejects.toThrow(InvalidError);
  });
});
