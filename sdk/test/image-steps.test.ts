// Generic build steps: apt, micromamba, raw commands, Dockerfile lines, ENV/WORKDIR,
// ENTRYPOINT/SHELL/CMD, layer parameters, forceBuild propagation and immutability.
// Expected lines follow Modal's `_image.py` (modal-notes.md §2.2); ENTRYPOINT/SHELL/CMD
// arrays are JSON-escaped per element, a deliberate Kiln difference.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FilePatternMatcher, Image, InvalidError, NotFoundError, Secret } from "../src/index.ts";
import { base, commandsOf, failure, layerOf, sha256, useIsolatedEnv, useTempDirs, writeFile } from "./image-helpers.ts";

// ---- helpers ----------------------------------------------------------------------------

useIsolatedEnv();
const tmpDir = useTempDirs();

// ---- aptInstall -------------------------------------------------------------------------

describe("Image.aptInstall", () => {
  it("updates, then installs the packages in the order given (not sorted)", async () => {
    const { layers } = await base().aptInstall("zlib1g-dev", "git", ["curl", "build-essential"]).describe();
    expect(layers).toHaveLength(2);
    expect(layers[1]!.dockerfileCommands).toEqual([
      "FROM base",
      "RUN apt-get update",
      "RUN apt-get install -y zlib1g-dev git curl build-essential",
    ]);
  });

  it("shell-quotes each package and keeps duplicates", async () => {
    expect(await commandsOf(base().aptInstall("libfoo>=1", "a b", "git", "git"))).toEqual([
      "FROM base",
      "RUN apt-get update",
      "RUN apt-get install -y 'libfoo>=1' 'a b' git git",
    ]);
  });

  it("returns the same Image without packages and rejects non-strings", () => {
    const image = base();
    expect(image.aptInstall()).toBe(image);
    expect(image.aptInstall([])).toBe(image);
    expect(() => image.aptInstall(["git", 3] as never)).toThrow(InvalidError);
  });

  it("is identical on every builder version", async () => {
    const image = base().aptInstall("git");
    for (const version of ["2023.12", "2024.04", "2024.10", "2025.06", "PREVIEW"]) {
      expect(await commandsOf(image, version)).toEqual(["FROM base", "RUN apt-get update", "RUN apt-get install -y git"]);
    }
  });
});

// ---- micromambaInstall ------------------------------------------------------------------

describe("Image.micromambaInstall", () => {
  const mamba = () => Image.micromamba();

  it("installs packages unsorted and quoted", async () => {
    expect(await commandsOf(mamba().micromambaInstall("scipy>=1", "numpy", ["cudatoolkit"]))).toEqual([
      "FROM base",
      "RUN micromamba install 'scipy>=1' numpy cudatoolkit --yes",
    ]);
  });

  it("adds channels unquoted, in order", async () => {
    expect(await commandsOf(mamba().micromambaInstall(["pytorch"], { channels: ["pytorch", "nvidia", "conda-forge"] }))).toEqual([
      "FROM base",
      "RUN micromamba install pytorch -c pytorch -c nvidia -c conda-forge --yes",
    ]);
  });

  it("copies a spec file to /<basename> and installs it into base", async () => {
    const dir = tmpDir();
    const spec = writeFile(dir, "envs/environment.yml", "dependencies:\n  - numpy\n");
    const layer = await layerOf(mamba().micromambaInstall(["numpy"], { specFile: spec, channels: ["conda-forge"] }));
    expect(layer.dockerfileCommands).toEqual([
      "FROM base",
      "COPY /environment.yml /environment.yml",
      "RUN micromamba install numpy -f /environment.yml -n base -c conda-forge --yes",
    ]);
    expect(layer.contextFiles).toEqual([{ path: "environment.yml", sha256: sha256("dependencies:\n  - numpy\n"), mode: 0o644 }]);
  });

  it("installs from a spec file alone without a double space", async () => {
    const spec = writeFile(tmpDir(), "env.yml", "dependencies: []\n");
    expect(await commandsOf(mamba().micromambaInstall({ specFile: spec }))).toEqual([
      "FROM base",
      "COPY /env.yml /env.yml",
      "RUN micromamba install -f /env.yml -n base --yes",
    ]);
  });

  it("returns the same Image with neither packages nor a spec file", () => {
    const image = mamba();
    expect(image.micromambaInstall()).toBe(image);
    expect(image.micromambaInstall([], { channels: ["conda-forge"] })).toBe(image);
  });

  it("raises NotFoundError for a missing spec file", async () => {
    const missing = path.join(tmpDir(), "env.yml");
    expect(await failure(() => mamba().micromambaInstall({ specFile: missing }))).toBeInstanceOf(NotFoundError);
  });
});

// ---- runCommands ------------------------------------------------------------------------

describe("Image.runCommands", () => {
  it("emits one RUN line per command, verbatim", async () => {
    const cmds = ["echo 'hi' && ls -la", 'bash -c "echo $HOME"', "  spaced  "];
    expect(await commandsOf(base().runCommands(cmds[0]!, [cmds[1]!, cmds[2]!]))).toEqual([
      "FROM base",
      "RUN echo 'hi' && ls -la",
      'RUN bash -c "echo $HOME"',
      "RUN   spaced  ",
    ]);
  });

  it("returns the same Image without commands", () => {
    const image = base();
    expect(image.runCommands()).toBe(image);
    expect(image.runCommands([])).toBe(image);
    expect(image.runCommands([], { forceBuild: true })).toBe(image);
  });

  it("rejects non-string commands", () => {
    expect(() => base().runCommands(["ls", 1] as never)).toThrow(InvalidError);
  });
});

// ---- dockerfileCommands -----------------------------------------------------------------

describe("Image.dockerfileCommands", () => {
  it("adds the lines verbatim after FROM base", async () => {
    const lines = ["RUN echo 1 \\", "  && echo 2", "# a comment", "ENV A=1 B=2", "ARG X", "USER root"];
    const layer = await layerOf(base().dockerfileCommands(lines));
    expect(layer.dockerfileCommands).toEqual(["FROM base", ...lines]);
    expect(layer.contextFiles).toEqual([]);
    expect(layer.context).toBeNull();
    expect(await commandsOf(base().dockerfileCommands("RUN a", ["RUN b", "RUN c"]))).toEqual(["FROM base", "RUN a", "RUN b", "RUN c"]);
  });

  it("returns the same Image without commands", () => {
    const image = base();
    expect(image.dockerfileCommands()).toBe(image);
    expect(image.dockerfileCommands([])).toBe(image);
  });

  it("sends the files a COPY line needs from contextDir", async () => {
    const ctx = tmpDir();
    writeFile(ctx, "data/a.txt", "alpha");
    writeFile(ctx, "data/sub/b.txt", "beta", 0o755);
    writeFile(ctx, "other.txt", "not copied");
    writeFile(ctx, "src/main.py", "print()");
    const layer = await layerOf(base().dockerfileCommands(["COPY data /data", "RUN ls /data"], { contextDir: ctx }));
    expect(layer.dockerfileCommands).toEqual(["FROM base", "COPY data /data", "RUN ls /data"]);
    expect(layer.contextFiles).toEqual([
      { path: "data/a.txt", sha256: sha256("alpha"), mode: 0o644 },
      { path: "data/sub/b.txt", sha256: sha256("beta"), mode: 0o755 },
    ]);
    expect(layer.context!.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("ignores COPY --from lines", async () => {
    const ctx = tmpDir();
    writeFile(ctx, "uv", "binary");
    const layer = await layerOf(base().dockerfileCommands(["COPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/uv"], { contextDir: ctx }));
    expect(layer.contextFiles).toEqual([]);
  });

  it("applies an explicit ignore list to the COPY context", async () => {
    const ctx = tmpDir();
    writeFile(ctx, "data/a.txt", "alpha");
    writeFile(ctx, "data/secret.env", "x");
    const layer = await layerOf(base().dockerfileCommands(["COPY data /data"], { contextDir: ctx, ignore: ["data/secret.env"] }));
    expect(layer.contextFiles.map((f) => f.path)).toEqual(["data/a.txt"]);
    const matcher = await layerOf(
      base().dockerfileCommands(["COPY data /data"], { contextDir: ctx, ignore: new FilePatternMatcher("**/*.txt") }),
    );
    expect(matcher.contextFiles.map((f) => f.path)).toEqual(["data/secret.env"]);
  });

  it("sends contextFiles at their container paths", async () => {
    const dir = tmpDir();
    const conf = writeFile(dir, "local/conf.json", '{"a":1}');
    const layer = await layerOf(
      base().dockerfileCommands(["COPY /app/conf.json /etc/conf.json"], { contextFiles: { "/app/conf.json": conf }, contextDir: tmpDir() }),
    );
    expect(layer.dockerfileCommands).toEqual(["FROM base", "COPY /app/conf.json /etc/conf.json"]);
    expect(layer.contextFiles).toContainEqual({ path: "app/conf.json", sha256: sha256('{"a":1}'), mode: 0o644 });
  });

  it("raises NotFoundError for a missing context file", async () => {
    const missing = path.join(tmpDir(), "nope.json");
    expect(await failure(() => base().dockerfileCommands(["RUN true"], { contextFiles: { "/nope.json": missing } }))).toBeInstanceOf(
      NotFoundError,
    );
  });
});

// ---- env / workdir ----------------------------------------------------------------------

describe("Image.env", () => {
  it("emits one ENV line per key in object order, values shell-quoted", async () => {
    const image = base().env({ B: "1", A: "hello world", PATH: "$PATH:/opt/bin", EMPTY: "", Q: "it's" });
    expect(await commandsOf(image)).toEqual([
      "FROM base",
      "ENV B=1",
      "ENV A='hello world'",
      "ENV PATH='$PATH:/opt/bin'",
      "ENV EMPTY=''",
      `ENV Q='it'"'"'s'`,
    ]);
  });

  it("rejects non-string values with Modal's message", () => {
    expect(() => base().env({ A: 1 } as never)).toThrow(InvalidError);
    expect(() => base().env({ A: 1 } as never)).toThrow("Image ENV variables must be strings. Invalid keys: ['A']");
    expect(() => base().env({ A: 1, B: "ok", C: null } as never)).toThrow("Image ENV variables must be strings. Invalid keys: ['A', 'C']");
  });
});

describe("Image.workdir", () => {
  it("emits a quoted WORKDIR", async () => {
    expect(await commandsOf(base().workdir("/app"))).toEqual(["FROM base", "WORKDIR /app"]);
    expect(await commandsOf(base().workdir("/my app"))).toEqual(["FROM base", "WORKDIR '/my app'"]);
  });
});

// ---- entrypoint / shell / cmd -----------------------------------------------------------

describe("Image.entrypoint, Image.shell and Image.cmd", () => {
  it("emit JSON-array lines", async () => {
    expect(await commandsOf(base().entrypoint(["python", "-m", "app"]))).toEqual(["FROM base", 'ENTRYPOINT ["python", "-m", "app"]']);
    expect(await commandsOf(base().shell(["/bin/bash", "-c"]))).toEqual(["FROM base", 'SHELL ["/bin/bash", "-c"]']);
    expect(await commandsOf(base().cmd(["python", "app.py"]))).toEqual(["FROM base", 'CMD ["python", "app.py"]']);
  });

  it("emit an empty array for an empty list", async () => {
    expect(await commandsOf(base().entrypoint([]))).toEqual(["FROM base", "ENTRYPOINT []"]);
    expect(await commandsOf(base().shell([]))).toEqual(["FROM base", "SHELL []"]);
    expect(await commandsOf(base().cmd([]))).toEqual(["FROM base", "CMD []"]);
  });

  it("JSON-escape inner quotes and backslashes (Kiln difference)", async () => {
    expect(await commandsOf(base().cmd(["echo", '"hi"']))).toEqual(["FROM base", 'CMD ["echo", "\\"hi\\""]']);
    expect(await commandsOf(base().entrypoint(["sh", "-c", "echo a\\b"]))).toEqual(["FROM base", 'ENTRYPOINT ["sh", "-c", "echo a\\\\b"]']);
  });

  it("reject anything but a list of strings", () => {
    expect(() => base().entrypoint("python" as never)).toThrow(InvalidError);
    expect(() => base().shell(["bash", 1] as never)).toThrow(InvalidError);
    expect(() => base().cmd("python app.py" as never)).toThrow("Image CMD must be a list of strings.");
  });
});

// ---- layer parameters -------------------------------------------------------------------

describe("layer parameters", () => {
  it("reflect gpu, secrets and env in the layer", async () => {
    const layer = await layerOf(
      base().runCommands("nvidia-smi", {
        gpu: "A100-80GB:2",
        secrets: [Secret.fromName("hf"), Secret.fromName("wandb")],
        env: { B: "2", A: "1" },
      }),
    );
    expect(layer.gpu).toEqual({ type: "A100-80GB", count: 2 });
    // env becomes an inline secret appended after the user's secrets; only key names appear.
    expect(layer.secrets).toEqual(["hf", "wandb", Secret.fromDict({ A: "", B: "" }).ref]);
    expect(JSON.stringify(layer)).not.toContain('"1"');
  });

  it("upper-cases the GPU type and defaults the count to 1", async () => {
    expect((await layerOf(base().pipInstall(["torch"], { gpu: "t4" }))).gpu).toEqual({ type: "T4", count: 1 });
    expect((await layerOf(base().aptInstall(["git"], { gpu: "h100:8" }))).gpu).toEqual({ type: "H100", count: 8 });
    expect((await layerOf(base().aptInstall("git"))).gpu).toBeNull();
    expect((await layerOf(base().aptInstall("git"))).secrets).toEqual([]);
  });

  it("applies to every layer-adding method that takes them", async () => {
    const secrets = [Secret.fromName("s")];
    const gpu = "L4";
    const images = [
      base().pipInstall(["x"], { secrets, gpu }),
      base().aptInstall(["x"], { secrets, gpu }),
      base().runCommands(["x"], { secrets, gpu }),
      base().dockerfileCommands(["RUN x"], { secrets, gpu }),
      Image.micromamba().micromambaInstall(["x"], { secrets, gpu }),
      base().uvPipInstall(["x"], { secrets, gpu }),
    ];
    for (const image of images) {
      const layer = await layerOf(image);
      expect(layer.secrets).toEqual(["s"]);
      expect(layer.gpu).toEqual({ type: "L4", count: 1 });
    }
  });

  it("rejects secrets that are not Secret instances", () => {
    expect(() => base().runCommands(["ls"], { secrets: ["gh"] as never })).toThrow(InvalidError);
  });
});

// ---- forceBuild -------------------------------------------------------------------------

describe("forceBuild propagation", () => {
  it("forces the layer and every later layer, but env and workdir do not pass it on", async () => {
    const image = base()
      .aptInstall("git")
      .pipInstall(["numpy"], { forceBuild: true })
      .aptInstall("curl")
      .runCommands("ls")
      .env({ A: "1" })
      .runCommands("pwd")
      .pipInstall(["x"], { forceBuild: true })
      .workdir("/app")
      .aptInstall("vim");
    const { layers } = await image.describe();
    expect(layers.map((l) => l.forceBuild)).toEqual([false, false, true, true, true, false, false, true, false, false]);
  });

  it("never forces the env and workdir layers themselves", async () => {
    const { layers } = await base().pipInstall(["a"], { forceBuild: true }).env({ A: "1" }).describe();
    expect(layers.map((l) => l.forceBuild)).toEqual([false, true, false]);
    const wd = await base().pipInstall(["a"], { forceBuild: true }).workdir("/w").describe();
    expect(wd.layers.map((l) => l.forceBuild)).toEqual([false, true, false]);
  });

  it("propagates from a forced root image", async () => {
    const { layers } = await Image.debianSlim({ forceBuild: true }).aptInstall("git").cmd(["bash"]).describe();
    expect(layers.map((l) => l.forceBuild)).toEqual([true, true, true]);
  });

  it("propagates through entrypoint/shell/cmd, which go through dockerfileCommands", async () => {
    const { layers } = await base().runCommands(["a"], { forceBuild: true }).entrypoint(["x"]).shell(["sh"]).aptInstall("y").describe();
    expect(layers.map((l) => l.forceBuild)).toEqual([false, true, true, true, true]);
  });

  it("does not change the layer key", async () => {
    const forced = await layerOf(base().aptInstall(["git"], { forceBuild: true }));
    const plain = await layerOf(base().aptInstall("git"));
    expect(forced.key).toBe(plain.key);
  });
});

// ---- immutability -----------------------------------------------------------------------

describe("immutability", () => {
  it("leaves the original image unchanged after chaining", async () => {
    const original = base().aptInstall("git");
    const before = await original.describe();
    const derived = [
      original.pipInstall("numpy"),
      original.env({ A: "1" }),
      original.workdir("/app"),
      original.runCommands(["ls"], { forceBuild: true }),
      original.cmd(["bash"]),
      original.dockerfileCommands("RUN true"),
    ];
    for (const image of derived) expect(image).not.toBe(original);
    const after = await original.describe();
    expect(after).toEqual(before);
    expect(after.layers).toHaveLength(2);
    // A later layer built from the original is not forced by a sibling's forceBuild.
    expect((await layerOf(original.aptInstall("curl"))).forceBuild).toBe(false);
  });

  it("gives sibling chains independent layers with a shared prefix", async () => {
    const root = base();
    const a = await root.pipInstall("a").describe();
    const b = await root.pipInstall("b").describe();
    expect(a.layers[0]!.key).toBe(b.layers[0]!.key);
    expect(a.layers[1]!.key).not.toBe(b.layers[1]!.key);
  });
});
