// Python package steps from local files: pipInstallFromRequirements and pipInstallFromPyproject.
// Expected lines follow Modal's `_image.py` (modal-notes.md §2.2), with Kiln's deliberate
// differences: TS names in messages, "Secret(s)" instead of "modal.Secret(s)".
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InvalidError, NotFoundError } from "../src/index.ts";
import { base, commandsOf, failure, layerOf, sha256, useIsolatedEnv, useTempDirs, writeFile } from "./image-helpers.ts";

useIsolatedEnv();
const tmpDir = useTempDirs();

// ---- pipInstallFromRequirements ---------------------------------------------------------

describe("Image.pipInstallFromRequirements", () => {
  const REQS = "numpy==2.0\nrequests\n";

  it("copies the file as /.requirements.txt and installs from it", async () => {
    const dir = tmpDir();
    const file = writeFile(dir, "requirements.txt", REQS);
    const layer = await layerOf(base().pipInstallFromRequirements(file));
    expect(layer.dockerfileCommands).toEqual([
      "FROM base",
      "COPY /.requirements.txt /.requirements.txt",
      "RUN python -m pip install -r /.requirements.txt",
    ]);
    expect(layer.contextFiles).toEqual([{ path: ".requirements.txt", sha256: sha256(REQS), mode: 0o644 }]);
    expect(layer.context).not.toBeNull();
  });

  it("emits findLinks twice: `-f x` unquoted and `--find-links x` quoted", async () => {
    const file = writeFile(tmpDir(), "reqs.txt", REQS);
    expect((await commandsOf(base().pipInstallFromRequirements(file, { findLinks: "https://x.org/w?a=1" }))).at(-1)).toBe(
      "RUN python -m pip install -r /.requirements.txt -f https://x.org/w?a=1 --find-links 'https://x.org/w?a=1'",
    );
    expect((await commandsOf(base().pipInstallFromRequirements(file, { findLinks: "x" }))).at(-1)).toBe(
      "RUN python -m pip install -r /.requirements.txt -f x --find-links x",
    );
  });

  it("appends the other pip flags", async () => {
    const file = writeFile(tmpDir(), "reqs.txt", REQS);
    const image = base().pipInstallFromRequirements(file, { indexUrl: "i", extraIndexUrl: "e", pre: true, extraOptions: "--no-deps" });
    expect((await commandsOf(image)).at(-1)).toBe(
      "RUN python -m pip install -r /.requirements.txt --index-url i --extra-index-url e --pre --no-deps",
    );
    expect((await commandsOf(base().pipInstallFromRequirements(file, { pre: true }))).at(-1)).toBe(
      "RUN python -m pip install -r /.requirements.txt  --pre",
    );
  });

  it("keeps Modal's legacy whitespace on 2023.12 (a blank find-links slot plus the extra-args space)", async () => {
    const file = writeFile(tmpDir(), "reqs.txt", REQS);
    expect((await commandsOf(base().pipInstallFromRequirements(file), "2023.12")).at(-1)).toBe(
      "RUN python -m pip install -r /.requirements.txt  ",
    );
    expect((await commandsOf(base().pipInstallFromRequirements(file, { findLinks: "x" }), "2023.12")).at(-1)).toBe(
      "RUN python -m pip install -r /.requirements.txt -f x --find-links x",
    );
  });

  it("changes the context digest (and key) when the file changes", async () => {
    const dir = tmpDir();
    const file = writeFile(dir, "reqs.txt", REQS);
    const first = await layerOf(base().pipInstallFromRequirements(file));
    writeFile(dir, "reqs.txt", "numpy==2.1\n");
    const second = await layerOf(base().pipInstallFromRequirements(file));
    expect(second.contextFiles[0]!.sha256).toBe(sha256("numpy==2.1\n"));
    expect(second.context!.digest).not.toBe(first.context!.digest);
    expect(second.key).not.toBe(first.key);
  });

  it("raises NotFoundError for a missing file", async () => {
    const missing = path.join(tmpDir(), "nope.txt");
    expect(await failure(() => base().pipInstallFromRequirements(missing))).toBeInstanceOf(NotFoundError);
  });
});

// ---- pipInstallFromPyproject ------------------------------------------------------------

describe("Image.pipInstallFromPyproject", () => {
  const PYPROJECT = [
    "[project]",
    'name = "demo"',
    'version = "0.1.0"',
    'dependencies = ["requests>=2", "Flask", "attrs", "numpy"]',
    "",
    "[project.optional-dependencies]",
    'test = ["pytest", "coverage[toml]"]',
    'docs = ["sphinx", "attrs"]',
    "",
  ].join("\n");

  it("installs the sorted [project.dependencies]", async () => {
    const file = writeFile(tmpDir(), "pyproject.toml", PYPROJECT);
    const layer = await layerOf(base().pipInstallFromPyproject(file));
    expect(layer.dockerfileCommands).toEqual(["FROM base", "RUN python -m pip install Flask attrs numpy 'requests>=2'"]);
    // The pyproject is parsed locally, never uploaded.
    expect(layer.contextFiles).toEqual([]);
    expect(layer.context).toBeNull();
  });

  it("adds the requested optional groups, sorted with the rest, skipping unknown groups and not deduplicating", async () => {
    const file = writeFile(tmpDir(), "pyproject.toml", PYPROJECT);
    const image = base().pipInstallFromPyproject(file, { optionalDependencies: ["docs", "nope", "test"] });
    expect(await commandsOf(image)).toEqual([
      "FROM base",
      "RUN python -m pip install Flask attrs attrs 'coverage[toml]' numpy pytest 'requests>=2' sphinx",
    ]);
  });

  it("appends pip flags", async () => {
    const file = writeFile(tmpDir(), "pyproject.toml", PYPROJECT);
    const image = base().pipInstallFromPyproject(file, { optionalDependencies: ["test"], indexUrl: "i", pre: true });
    expect((await commandsOf(image)).at(-1)).toBe(
      "RUN python -m pip install Flask attrs 'coverage[toml]' numpy pytest 'requests>=2' --index-url i --pre",
    );
  });

  it("keeps the trailing space on 2023.12", async () => {
    const file = writeFile(tmpDir(), "pyproject.toml", PYPROJECT);
    expect((await commandsOf(base().pipInstallFromPyproject(file), "2023.12")).at(-1)).toBe(
      "RUN python -m pip install Flask attrs numpy 'requests>=2' ",
    );
  });

  it("rejects a pyproject without [project.dependencies] when describing", async () => {
    const file = writeFile(tmpDir(), "pyproject.toml", '[tool.poetry]\nname = "demo"\n\n[tool.poetry.dependencies]\npython = "^3.12"\n');
    const image = base().pipInstallFromPyproject(file);
    await expect(image.describe()).rejects.toThrow(InvalidError);
    await expect(image.describe()).rejects.toThrow("No [project.dependencies] section");
  });

  it("raises NotFoundError for a missing file", async () => {
    const missing = path.join(tmpDir(), "pyproject.toml");
    expect(await failure(() => base().pipInstallFromPyproject(missing))).toBeInstanceOf(NotFoundError);
  });
});
