// Python package steps with uv: uvPipInstall and uvSync.
// Expected lines follow Modal's `_image.py` (modal-notes.md §2.2), with Kiln's deliberate
// differences: TS names in messages, "Secret(s)" instead of "modal.Secret(s)".
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InvalidError, NotFoundError } from "../src/index.ts";
import { base, commandsOf, failure, layerOf, sha256, useIsolatedEnv, useTempDirs, writeFile } from "./image-helpers.ts";

useIsolatedEnv();
const tmpDir = useTempDirs();

// ---- uvPipInstall -----------------------------------------------------------------------

describe("Image.uvPipInstall", () => {
  const UV_COPY = "COPY --from=ghcr.io/astral-sh/uv:latest /uv /.uv/uv";
  const UV_RUN = "RUN /.uv/uv pip install --python $(command -v python) --compile-bytecode";

  it("copies uv from its image and installs sorted, quoted packages", async () => {
    const layer = await layerOf(base().uvPipInstall("numpy", ["Pandas>=2", "attrs"]));
    expect(layer.dockerfileCommands).toEqual(["FROM base", UV_COPY, `${UV_RUN} 'Pandas>=2' attrs numpy`]);
    expect(layer.contextFiles).toEqual([]);
  });

  it("adds index flags, prerelease, extra options and a pinned uv version", async () => {
    const image = base().uvPipInstall(["torch"], {
      findLinks: "https://f.example/?a",
      indexUrl: "https://i.example/simple",
      extraIndexUrl: "https://e.example/s s",
      pre: true,
      extraOptions: "--no-build-isolation",
      uvVersion: "0.8.3",
    });
    expect(await commandsOf(image)).toEqual([
      "FROM base",
      "COPY --from=ghcr.io/astral-sh/uv:0.8.3 /uv /.uv/uv",
      `${UV_RUN} --find-links 'https://f.example/?a' --index-url https://i.example/simple --extra-index-url 'https://e.example/s s' --prerelease allow --no-build-isolation torch`,
    ]);
  });

  it("copies each requirements file under an index-prefixed name", async () => {
    const dir = tmpDir();
    const a = writeFile(dir, "test/requirements.txt", "pytest\n");
    const b = writeFile(dir, "a/b/requirements.txt", "numpy\n");
    const layer = await layerOf(base().uvPipInstall(["click"], { requirements: [a, b], pre: true }));
    expect(layer.dockerfileCommands).toEqual([
      "FROM base",
      UV_COPY,
      "COPY /.0_requirements.txt /.uv/0/requirements.txt",
      "COPY /.1_requirements.txt /.uv/1/requirements.txt",
      `${UV_RUN} --prerelease allow --requirements /.uv/0/requirements.txt --requirements /.uv/1/requirements.txt click`,
    ]);
    expect(layer.contextFiles).toEqual([
      { path: ".0_requirements.txt", sha256: sha256("pytest\n"), mode: 0o644 },
      { path: ".1_requirements.txt", sha256: sha256("numpy\n"), mode: 0o644 },
    ]);
  });

  it("builds a layer from requirements alone", async () => {
    const file = writeFile(tmpDir(), "reqs.txt", "numpy\n");
    expect(await commandsOf(base().uvPipInstall({ requirements: [file] }))).toEqual([
      "FROM base",
      UV_COPY,
      "COPY /.0_reqs.txt /.uv/0/reqs.txt",
      `${UV_RUN} --requirements /.uv/0/reqs.txt`,
    ]);
  });

  it("returns the same Image with neither packages nor requirements", () => {
    const image = base();
    expect(image.uvPipInstall()).toBe(image);
    expect(image.uvPipInstall([], { requirements: [] })).toBe(image);
  });

  it("rejects option-like packages, non-string packages and a non-list requirements", () => {
    expect(() => base().uvPipInstall("numpy", "--upgrade")).toThrow(
      "Package list for `Image.uvPipInstall` cannot contain other arguments; try the `extraOptions` parameter instead.",
    );
    expect(() => base().uvPipInstall("numpy", "--upgrade")).toThrow(InvalidError);
    expect(() => base().uvPipInstall([1] as never)).toThrow(InvalidError);
    expect(() => base().uvPipInstall(["x"], { requirements: "requirements.txt" as never })).toThrow(InvalidError);
  });

  it("raises NotFoundError for a missing requirements file", async () => {
    const missing = path.join(tmpDir(), "requirements.txt");
    expect(await failure(() => base().uvPipInstall({ requirements: [missing] }))).toBeInstanceOf(NotFoundError);
  });
});

// ---- uvSync -----------------------------------------------------------------------------

describe("Image.uvSync", () => {
  const UV_COPY = "COPY --from=ghcr.io/astral-sh/uv:latest /uv /.uv/uv";
  const ENV_PATH = "ENV PATH=/.uv/.venv/bin:$PATH";
  const PYPROJECT = '[project]\nname = "demo"\nversion = "0.1.0"\ndependencies = ["numpy"]\n';
  const LOCK = "version = 1\n";

  it("copies pyproject.toml and uv.lock and syncs frozen", async () => {
    const dir = tmpDir();
    writeFile(dir, "pyproject.toml", PYPROJECT);
    writeFile(dir, "uv.lock", LOCK);
    const layer = await layerOf(base().uvSync(dir));
    expect(layer.dockerfileCommands).toEqual([
      "FROM base",
      UV_COPY,
      "COPY /.pyproject.toml /.uv/pyproject.toml",
      "COPY /.uv.lock /.uv/uv.lock",
      "RUN /.uv/uv sync --project=/.uv --no-install-workspace --compile-bytecode --frozen",
      ENV_PATH,
    ]);
    expect(layer.contextFiles).toEqual([
      { path: ".pyproject.toml", sha256: sha256(PYPROJECT), mode: 0o644 },
      { path: ".uv.lock", sha256: sha256(LOCK), mode: 0o644 },
    ]);
  });

  it("passes groups, extras and extra options, and drops --frozen when frozen is false", async () => {
    const dir = tmpDir();
    writeFile(dir, "pyproject.toml", PYPROJECT);
    writeFile(dir, "uv.lock", LOCK);
    const image = base().uvSync(dir, {
      groups: ["dev", "lint"],
      extras: ["cuda"],
      extraOptions: "--no-dev",
      frozen: false,
      uvVersion: "0.8.3",
    });
    expect(await commandsOf(image)).toEqual([
      "FROM base",
      "COPY --from=ghcr.io/astral-sh/uv:0.8.3 /uv /.uv/uv",
      "COPY /.pyproject.toml /.uv/pyproject.toml",
      "COPY /.uv.lock /.uv/uv.lock",
      "RUN /.uv/uv sync --project=/.uv --no-install-workspace --compile-bytecode --group=dev --group=lint --extra=cuda --no-dev",
      ENV_PATH,
    ]);
    expect((await commandsOf(base().uvSync(dir, { groups: ["dev"] }))).at(-2)).toBe(
      "RUN /.uv/uv sync --project=/.uv --no-install-workspace --compile-bytecode --group=dev --frozen",
    );
  });

  it("omits the lockfile lines and --frozen without a uv.lock", async () => {
    const dir = tmpDir();
    writeFile(dir, "pyproject.toml", PYPROJECT);
    const layer = await layerOf(base().uvSync(dir));
    expect(layer.dockerfileCommands).toEqual([
      "FROM base",
      UV_COPY,
      "COPY /.pyproject.toml /.uv/pyproject.toml",
      "RUN /.uv/uv sync --project=/.uv --no-install-workspace --compile-bytecode",
      ENV_PATH,
    ]);
    expect(layer.contextFiles.map((f) => f.path)).toEqual([".pyproject.toml"]);
  });

  it("defaults to the current directory", async () => {
    const dir = tmpDir();
    writeFile(dir, "pyproject.toml", PYPROJECT);
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const image = base().uvSync();
      expect((await layerOf(image)).contextFiles).toEqual([{ path: ".pyproject.toml", sha256: sha256(PYPROJECT), mode: 0o644 }]);
      expect((await commandsOf(base().uvSync({ groups: ["g"] }))).at(-2)).toBe(
        "RUN /.uv/uv sync --project=/.uv --no-install-workspace --compile-bytecode --group=g",
      );
    } finally {
      process.chdir(cwd);
    }
  });

  it("expects ./pyproject.toml to exist when run from a directory without one", async () => {
    const dir = tmpDir();
    const cwd = process.cwd();
    process.chdir(dir);
    let error: Error;
    try {
      error = await failure(() => base().uvSync());
    } finally {
      process.chdir(cwd);
    }
    expect(error.message).toBe("Expected ./pyproject.toml to exist");
    // Modal raises InvalidError here (`_check_pyproject_toml`).
    expect(error).toBeInstanceOf(InvalidError);
  });

  it("names the given directory in the missing-pyproject message", async () => {
    const dir = tmpDir();
    const error = await failure(() => base().uvSync(dir));
    expect(error.message).toBe(`Expected ${dir}/pyproject.toml to exist`);
  });

  it("rejects uv workspaces", async () => {
    const dir = tmpDir();
    writeFile(dir, "pyproject.toml", `${PYPROJECT}\n[tool.uv.workspace]\nmembers = ["packages/*"]\n`);
    const error = await failure(() => base().uvSync(dir));
    expect(error).toBeInstanceOf(InvalidError);
    expect(error.message).toBe("uv workspaces are not supported");
  });

  it("rejects non-list groups and extras", () => {
    expect(() => base().uvSync("./", { groups: "dev" as never })).toThrow("groups must be None or a list of strings");
    expect(() => base().uvSync("./", { extras: "cuda" as never })).toThrow("extras must be None or a list of strings");
    expect(() => base().uvSync("./", { groups: "dev" as never })).toThrow(InvalidError);
  });
});
