// Python package steps: pip, private repos, requirements files, pyproject, poetry and uv.
// Expected lines follow Modal's `_image.py` (modal-notes.md §2.2), with Kiln's deliberate
// differences: TS names in messages, "Secret(s)" instead of "modal.Secret(s)".
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type ImagePipInstallParams, InvalidError, NotFoundError, Secret } from "../src/index.ts";
import { base, commandsOf, failure, layerOf, sha256, useIsolatedEnv, useTempDirs, writeFile } from "./image-helpers.ts";

// ---- helpers ----------------------------------------------------------------------------

useIsolatedEnv();
const tmpDir = useTempDirs();

// ---- pipInstall -------------------------------------------------------------------------

describe("Image.pipInstall", () => {
  it("adds one FROM base layer with a single pip line", async () => {
    const { layers } = await base().pipInstall("numpy", "pandas>=2").describe();
    expect(layers).toHaveLength(2);
    expect(layers[1]!.dockerfileCommands).toEqual(["FROM base", "RUN python -m pip install numpy 'pandas>=2'"]);
    expect(layers[1]!.contextFiles).toEqual([]);
  });

  it("sorts by plain string (code point) order, Numpy before numpy, without dedup", async () => {
    expect(await commandsOf(base().pipInstall("numpy", "Numpy", "zlib", "a", "numpy", "_x", "Zeta"))).toEqual([
      "FROM base",
      "RUN python -m pip install Numpy Zeta _x a numpy numpy zlib",
    ]);
  });

  it("flattens arrays one level and mixes them with rest arguments", async () => {
    expect(await commandsOf(base().pipInstall(["torch", "click"], "attrs", ["httpx~=0.23.3"]))).toEqual([
      "FROM base",
      "RUN python -m pip install attrs click 'httpx~=0.23.3' torch",
    ]);
    expect(await commandsOf(base().pipInstall(["b", "a"], { indexUrl: "https://i.example/simple" }))).toEqual([
      "FROM base",
      "RUN python -m pip install a b --index-url https://i.example/simple",
    ]);
  });

  it("shell-quotes each package like shlex.join", async () => {
    expect(await commandsOf(base().pipInstall("requests[socks]", "x<2", "it's", "plain-name_1.0"))).toEqual([
      "FROM base",
      `RUN python -m pip install 'it'"'"'s' plain-name_1.0 'requests[socks]' 'x<2'`,
    ]);
  });

  const flagCases: [string, ImagePipInstallParams, string][] = [
    ["findLinks (quoted)", { findLinks: "https://x.org/links?a=1" }, "numpy --find-links 'https://x.org/links?a=1'"],
    ["indexUrl (safe, unquoted)", { indexUrl: "https://pypi.example.com/simple" }, "numpy --index-url https://pypi.example.com/simple"],
    ["indexUrl (quoted)", { indexUrl: "https://u:p@host/s s" }, "numpy --index-url 'https://u:p@host/s s'"],
    ["extraIndexUrl", { extraIndexUrl: "https://e.example/simple?x" }, "numpy --extra-index-url 'https://e.example/simple?x'"],
    ["empty findLinks is still passed", { findLinks: "" }, "numpy --find-links ''"],
    ["pre alone keeps the double space", { pre: true }, "numpy  --pre"],
    ["pre false adds nothing", { pre: false }, "numpy"],
    ["extraOptions verbatim", { extraOptions: "--no-build-isolation --no-clean" }, "numpy --no-build-isolation --no-clean"],
    ["empty extraOptions adds nothing", { extraOptions: "" }, "numpy"],
    ["pre + extraOptions", { pre: true, extraOptions: "--no-deps" }, "numpy  --pre --no-deps"],
    ["findLinks + indexUrl", { findLinks: "f", indexUrl: "i" }, "numpy --find-links f --index-url i"],
    ["indexUrl + extraIndexUrl", { indexUrl: "i", extraIndexUrl: "e" }, "numpy --index-url i --extra-index-url e"],
    ["indexUrl + pre", { indexUrl: "i", pre: true }, "numpy --index-url i --pre"],
    ["extraIndexUrl + extraOptions", { extraIndexUrl: "e", extraOptions: "-v" }, "numpy --extra-index-url e -v"],
    [
      "every flag, in Modal's fixed order",
      { findLinks: "f", indexUrl: "i", extraIndexUrl: "e", pre: true, extraOptions: "--no-cache-dir 'a b'" },
      "numpy --find-links f --index-url i --extra-index-url e --pre --no-cache-dir 'a b'",
    ],
    [
      "every flag, params given in reverse order",
      { extraOptions: "-q", pre: true, extraIndexUrl: "e", indexUrl: "i", findLinks: "f" },
      "numpy --find-links f --index-url i --extra-index-url e --pre -q",
    ],
  ];

  for (const [name, params, expected] of flagCases) {
    it(`flags: ${name}`, async () => {
      expect(await commandsOf(base().pipInstall(["numpy"], params))).toEqual(["FROM base", `RUN python -m pip install ${expected}`]);
    });
  }

  it("returns the same Image when there are no packages", () => {
    const image = base();
    expect(image.pipInstall()).toBe(image);
    expect(image.pipInstall([])).toBe(image);
    expect(image.pipInstall([], { indexUrl: "https://x" })).toBe(image);
  });

  it("rejects option-like packages with the extraOptions hint", () => {
    const message = "Package list for `Image.pipInstall` cannot contain other arguments; try the `extraOptions` parameter instead.";
    expect(() => base().pipInstall("numpy", "--upgrade")).toThrow(InvalidError);
    expect(() => base().pipInstall("numpy", "--upgrade")).toThrow(message);
    expect(() => base().pipInstall(["-r", "requirements.txt"])).toThrow(message);
    expect(() => base().pipInstall("-e .")).toThrow(message);
  });

  it("rejects non-string packages", () => {
    expect(() => base().pipInstall(42 as never)).toThrow(InvalidError);
    expect(() => base().pipInstall(["numpy", 1] as never)).toThrow(InvalidError);
    expect(() => base().pipInstall([["nested"]] as never)).toThrow(InvalidError);
    expect(() => base().pipInstall("numpy", null as never, "x")).toThrow(InvalidError);
    expect(() => base().pipInstall(["numpy", 1] as never)).toThrow("must only contain strings");
  });

  it("keeps the legacy trailing space on builder 2023.12 and strips it later", async () => {
    const image = base().pipInstall("numpy");
    expect(await commandsOf(image, "2023.12")).toEqual(["FROM base", "RUN python -m pip install numpy "]);
    expect(await commandsOf(image, "2024.04")).toEqual(["FROM base", "RUN python -m pip install numpy"]);
    expect(await commandsOf(image, "2024.10")).toEqual(["FROM base", "RUN python -m pip install numpy"]);
    expect(await commandsOf(image, "2025.06")).toEqual(["FROM base", "RUN python -m pip install numpy"]);
    expect(await commandsOf(base().pipInstall(["numpy"], { pre: true }), "2023.12")).toEqual([
      "FROM base",
      "RUN python -m pip install numpy  --pre",
    ]);
    expect(await commandsOf(base().pipInstall(["numpy"], { indexUrl: "i" }), "2023.12")).toEqual([
      "FROM base",
      "RUN python -m pip install numpy --index-url i",
    ]);
  });
});

// ---- pipInstallPrivateRepos -------------------------------------------------------------

describe("Image.pipInstallPrivateRepos", () => {
  const gh = Secret.fromName("gh");
  const gl = Secret.fromName("gl");
  const ghCheck = (names: string) =>
    `RUN bash -c "[[ -v GITHUB_TOKEN ]] || (echo 'GITHUB_TOKEN env var not set by provided Secret(s): ${names}' && exit 1)"`;
  const glCheck = (names: string) =>
    `RUN bash -c "[[ -v GITLAB_TOKEN ]] || (echo 'GITLAB_TOKEN env var not set by provided Secret(s): ${names}' && exit 1)"`;

  it("emits one token check per host family, the git install, then one line per repo in argument order", async () => {
    const image = base().pipInstallPrivateRepos(
      "github.com/ecorp/two@main",
      "gitlab.com/ecorp/one@1.0",
      "github.com/ecorp/a#subdirectory=inner",
      {
        gitUser: "erik",
        secrets: [gh, gl],
      },
    );
    const layer = await layerOf(image);
    const names = "Secret.fromName('gh'),Secret.fromName('gl')";
    expect(layer.dockerfileCommands).toEqual([
      "FROM base",
      ghCheck(names),
      glCheck(names),
      "RUN apt-get update && apt-get install -y git",
      'RUN python3 -m pip install "git+https://erik:$GITHUB_TOKEN@github.com/ecorp/two@main"',
      'RUN python3 -m pip install "git+https://erik:$GITLAB_TOKEN@gitlab.com/ecorp/one@1.0"',
      'RUN python3 -m pip install "git+https://erik:$GITHUB_TOKEN@github.com/ecorp/a#subdirectory=inner"',
    ]);
    expect(layer.secrets).toEqual(["gh", "gl"]);
  });

  it("checks only the host families that are used", async () => {
    expect(await commandsOf(base().pipInstallPrivateRepos("github.com/o/r", { gitUser: "u", secrets: [gh] }))).toEqual([
      "FROM base",
      ghCheck("Secret.fromName('gh')"),
      "RUN apt-get update && apt-get install -y git",
      'RUN python3 -m pip install "git+https://u:$GITHUB_TOKEN@github.com/o/r"',
    ]);
    expect(await commandsOf(base().pipInstallPrivateRepos("gitlab.com/o/r", { gitUser: "u", secrets: [gl] }))).toEqual([
      "FROM base",
      glCheck("Secret.fromName('gl')"),
      "RUN apt-get update && apt-get install -y git",
      'RUN python3 -m pip install "git+https://u:$GITLAB_TOKEN@gitlab.com/o/r"',
    ]);
  });

  it("appends the pip flags to every install line", async () => {
    const image = base().pipInstallPrivateRepos("github.com/o/a", "github.com/o/b", {
      gitUser: "u",
      secrets: [gh],
      indexUrl: "https://i.example/simple",
      pre: true,
      extraOptions: "--no-deps",
    });
    expect((await commandsOf(image)).slice(3)).toEqual([
      'RUN python3 -m pip install "git+https://u:$GITHUB_TOKEN@github.com/o/a" --index-url https://i.example/simple --pre --no-deps',
      'RUN python3 -m pip install "git+https://u:$GITHUB_TOKEN@github.com/o/b" --index-url https://i.example/simple --pre --no-deps',
    ]);
  });

  it("keeps the trailing space on 2023.12", async () => {
    const image = base().pipInstallPrivateRepos("github.com/o/a", { gitUser: "u", secrets: [gh] });
    expect((await commandsOf(image, "2023.12")).at(-1)).toBe('RUN python3 -m pip install "git+https://u:$GITHUB_TOKEN@github.com/o/a" ');
  });

  it("names the env secret too, since Modal appends it to the secrets before naming them", async () => {
    const image = base().pipInstallPrivateRepos("github.com/o/a", { gitUser: "u", secrets: [gh], env: { HINT: "x" } });
    const layer = await layerOf(image);
    expect(layer.secrets).toEqual(["gh", Secret.fromDict({ HINT: "x" }).ref]);
    expect(layer.dockerfileCommands[1]).toBe(ghCheck("Secret.fromName('gh'),Secret.fromDict({HINT})"));
  });

  it("requires secrets", () => {
    const message = "No secrets provided to function. Installing private packages requires tokens to be passed via Secret objects.";
    expect(() => base().pipInstallPrivateRepos("github.com/o/a", { gitUser: "u" })).toThrow(InvalidError);
    expect(() => base().pipInstallPrivateRepos("github.com/o/a", { gitUser: "u" })).toThrow(message);
    expect(() => base().pipInstallPrivateRepos("github.com/o/a", { gitUser: "u", secrets: [] })).toThrow(message);
    // env alone does not count: Modal checks `secrets` before appending the env secret.
    expect(() => base().pipInstallPrivateRepos("github.com/o/a", { gitUser: "u", env: { GITHUB_TOKEN: "t" } })).toThrow(message);
  });

  it("rejects refs that are not on github.com or gitlab.com", () => {
    const call = () => base().pipInstallPrivateRepos("github.com/o/a", "bitbucket.org/a/b", { gitUser: "u", secrets: [gh] });
    expect(call).toThrow(InvalidError);
    expect(call).toThrow("1 out of 2 given repository refs are invalid. Invalid refs: ['bitbucket.org/a/b']. ");
    const two = () =>
      base().pipInstallPrivateRepos("https://github.com/o/a", "gitlab.com/o/b", "githubx.com/o/c", { gitUser: "u", secrets: [gh] });
    expect(two).toThrow("2 out of 3 given repository refs are invalid. Invalid refs: ['https://github.com/o/a', 'githubx.com/o/c']. ");
  });
});

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
