// Python package steps with pip: pipInstall and pipInstallPrivateRepos.
// Expected lines follow Modal's `_image.py` (modal-notes.md §2.2), with Kiln's deliberate
// differences: TS names in messages, "Secret(s)" instead of "modal.Secret(s)".
import { describe, expect, it } from "vitest";
import { type ImagePipInstallParams, InvalidError, Secret } from "../src/index.ts";
import { base, commandsOf, layerOf, useIsolatedEnv } from "./image-helpers.ts";

useIsolatedEnv();

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
