// Python package steps with Poetry: poetryInstallFromFile.
// Expected lines follow Modal's `_image.py` (modal-notes.md §2.2), with Kiln's deliberate
// differences: TS names in messages, "Secret(s)" instead of "modal.Secret(s)".
import path from "node:path";
import { describe, expect, it } from "vitest";
import { NotFoundError } from "../src/index.ts";
import { base, commandsOf, failure, layerOf, sha256, useIsolatedEnv, useTempDirs, writeFile } from "./image-helpers.ts";

useIsolatedEnv();
const tmpDir = useTempDirs();

// ---- poetryInstallFromFile --------------------------------------------------------------

describe("Image.poetryInstallFromFile", () => {
  const PYPROJECT = '[tool.poetry]\nname = "demo"\n\n[tool.poetry.dependencies]\npython = "^3.12"\n';
  const LOCK = '# poetry lock\n[[package]]\nname = "x"\n';
  const CD = "RUN cd /tmp/poetry && \\ ";
  const CONFIG = "  poetry config virtualenvs.create false && \\ ";

  function project(): { dir: string; pyproject: string; lock: string } {
    const dir = tmpDir();
    return { dir, pyproject: writeFile(dir, "pyproject.toml", PYPROJECT), lock: writeFile(dir, "poetry.lock", LOCK) };
  }

  it("emits every line, with literal backslash-space continuations, on 2025.06", async () => {
    const { pyproject } = project();
    const layer = await layerOf(base().poetryInstallFromFile(pyproject));
    expect(layer.dockerfileCommands).toEqual([
      "FROM base",
      "RUN python -m pip install poetry",
      "COPY /.poetry.lock /tmp/poetry/poetry.lock",
      "COPY /.pyproject.toml /tmp/poetry/pyproject.toml",
      CD,
      CONFIG,
      "poetry install --no-root --compile",
    ]);
    expect(layer.dockerfileCommands[4]!.endsWith("\\ ")).toBe(true);
    expect(layer.contextFiles).toEqual([
      { path: ".poetry.lock", sha256: sha256(LOCK), mode: 0o644 },
      { path: ".pyproject.toml", sha256: sha256(PYPROJECT), mode: 0o644 },
    ]);
  });

  it("pins poetry ~=1.7 for latest on builders up to 2024.10, and indents the install line on 2023.12", async () => {
    const { pyproject } = project();
    const image = base().poetryInstallFromFile(pyproject);
    expect(await commandsOf(image, "2024.10")).toEqual([
      "FROM base",
      "RUN python -m pip install poetry~=1.7",
      "COPY /.poetry.lock /tmp/poetry/poetry.lock",
      "COPY /.pyproject.toml /tmp/poetry/pyproject.toml",
      CD,
      CONFIG,
      "poetry install --no-root --compile",
    ]);
    expect(await commandsOf(image, "2023.12")).toEqual([
      "FROM base",
      "RUN python -m pip install poetry~=1.7",
      "COPY /.poetry.lock /tmp/poetry/poetry.lock",
      "COPY /.pyproject.toml /tmp/poetry/pyproject.toml",
      CD,
      CONFIG,
      "  poetry install --no-root --compile",
    ]);
    expect((await commandsOf(image, "PREVIEW"))[1]).toBe("RUN python -m pip install poetry");
  });

  it("pins an explicit version with ==, and skips installing poetry for null", async () => {
    const { pyproject } = project();
    expect((await commandsOf(base().poetryInstallFromFile(pyproject, { poetryVersion: "1.8.0" })))[1]).toBe(
      "RUN python -m pip install poetry==1.8.0",
    );
    expect((await commandsOf(base().poetryInstallFromFile(pyproject, { poetryVersion: "1.8.0" }), "2024.10"))[1]).toBe(
      "RUN python -m pip install poetry==1.8.0",
    );
    expect(await commandsOf(base().poetryInstallFromFile(pyproject, { poetryVersion: null }))).toEqual([
      "FROM base",
      "COPY /.poetry.lock /tmp/poetry/poetry.lock",
      "COPY /.pyproject.toml /tmp/poetry/pyproject.toml",
      CD,
      CONFIG,
      "poetry install --no-root --compile",
    ]);
  });

  it("configures the old installer right after installing poetry", async () => {
    const { pyproject } = project();
    expect((await commandsOf(base().poetryInstallFromFile(pyproject, { oldInstaller: true }))).slice(0, 4)).toEqual([
      "FROM base",
      "RUN python -m pip install poetry",
      "RUN poetry config experimental.new-installer false",
      "COPY /.poetry.lock /tmp/poetry/poetry.lock",
    ]);
    expect((await commandsOf(base().poetryInstallFromFile(pyproject, { oldInstaller: true, poetryVersion: null }))).slice(0, 3)).toEqual([
      "FROM base",
      "RUN poetry config experimental.new-installer false",
      "COPY /.poetry.lock /tmp/poetry/poetry.lock",
    ]);
  });

  it("passes with/without/only groups comma-joined, in that order", async () => {
    const { pyproject } = project();
    const all = base().poetryInstallFromFile(pyproject, { with: ["dev", "test"], without: ["docs"], only: ["main", "extra"] });
    expect((await commandsOf(all)).at(-1)).toBe("poetry install --no-root --with dev,test --without docs --only main,extra --compile");
    expect((await commandsOf(base().poetryInstallFromFile(pyproject, { with: ["dev"] }))).at(-1)).toBe(
      "poetry install --no-root --with dev --compile",
    );
    expect((await commandsOf(base().poetryInstallFromFile(pyproject, { without: ["a", "b"] }))).at(-1)).toBe(
      "poetry install --no-root --without a,b --compile",
    );
    expect((await commandsOf(base().poetryInstallFromFile(pyproject, { only: ["main"] }))).at(-1)).toBe(
      "poetry install --no-root --only main --compile",
    );
    expect((await commandsOf(all, "2023.12")).at(-1)).toBe(
      "  poetry install --no-root --with dev,test --without docs --only main,extra --compile",
    );
  });

  it("uses an explicit lockfile", async () => {
    const { dir, pyproject } = project();
    const other = writeFile(dir, "locks/custom.lock", "# custom\n");
    const layer = await layerOf(base().poetryInstallFromFile(pyproject, { poetryLockfile: other }));
    expect(layer.dockerfileCommands[2]).toBe("COPY /.poetry.lock /tmp/poetry/poetry.lock");
    expect(layer.contextFiles[0]).toEqual({ path: ".poetry.lock", sha256: sha256("# custom\n"), mode: 0o644 });
  });

  it("raises NotFoundError when the inferred poetry.lock is missing", async () => {
    const dir = tmpDir();
    const pyproject = writeFile(dir, "pyproject.toml", PYPROJECT);
    const error = await failure(() => base().poetryInstallFromFile(pyproject));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe(
      `poetry.lock not found at inferred location: ${path.join(dir, "poetry.lock")}. If a lockfile is not needed, \`ignoreLockfile: true\` can be used.`,
    );
  });

  it("skips the lockfile with ignoreLockfile", async () => {
    const dir = tmpDir();
    const pyproject = writeFile(dir, "pyproject.toml", PYPROJECT);
    const layer = await layerOf(base().poetryInstallFromFile(pyproject, { ignoreLockfile: true }));
    expect(layer.dockerfileCommands).toEqual([
      "FROM base",
      "RUN python -m pip install poetry",
      "COPY /.pyproject.toml /tmp/poetry/pyproject.toml",
      CD,
      CONFIG,
      "poetry install --no-root --compile",
    ]);
    expect(layer.contextFiles).toEqual([{ path: ".pyproject.toml", sha256: sha256(PYPROJECT), mode: 0o644 }]);
  });

  it("raises NotFoundError for a missing pyproject", async () => {
    expect(
      await failure(() => base().poetryInstallFromFile(path.join(tmpDir(), "pyproject.toml"), { ignoreLockfile: true })),
    ).toBeInstanceOf(NotFoundError);
  });
});
