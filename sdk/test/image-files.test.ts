// Local files: addLocalFile/addLocalDir/addLocalPythonSource (copy and runtime mounts),
// the deprecated copyLocalFile/copyLocalDir/copyMount, and Mount. Expected behaviour follows
// Modal's `_image.py` and `mount.py` (modal-notes.md §2.2 and §5).
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FilePatternMatcher, type Image, InvalidError, Mount, NotFoundError } from "../src/index.ts";
import { base, commandsOf, failure, layerOf, sha256, useIsolatedEnv, useTempDirs, writeFile } from "./image-helpers.ts";

// ---- helpers ----------------------------------------------------------------------------

useIsolatedEnv(["PYTHONPATH"]);
const tmpDir = useTempDirs();
afterEach(() => {
  delete process.env.PYTHONPATH;
  vi.restoreAllMocks();
});

async function pathsOf(image: Image): Promise<string[]> {
  return (await layerOf(image)).contextFiles.map((f) => f.path);
}

/** A directory with files at two levels, one executable. */
function sampleDir(): string {
  const dir = tmpDir();
  writeFile(dir, "a.txt", "alpha");
  writeFile(dir, "b.log", "blog");
  writeFile(dir, "run.sh", "#!/bin/sh\necho hi\n", 0o755);
  writeFile(dir, "sub/c.txt", "gamma");
  writeFile(dir, "sub/d.log", "dlog");
  writeFile(dir, "sub/e.py", "print()\n");
  return dir;
}

const ALL = ["a.txt", "b.log", "run.sh", "sub/c.txt", "sub/d.log", "sub/e.py"];
const under = (prefix: string, rels: string[]) => rels.map((r) => (prefix ? `${prefix}/${r}` : r));

/** Captures process warnings as { message, type }. */
function captureWarnings(): { message: string; type: string | undefined }[] {
  const seen: { message: string; type: string | undefined }[] = [];
  vi.spyOn(process, "emitWarning").mockImplementation(((warning: string | Error, options?: unknown) => {
    const message = typeof warning === "string" ? warning : warning.message;
    let type: string | undefined = typeof warning === "string" ? undefined : warning.name;
    if (typeof options === "string") type = options;
    else if (options && typeof options === "object" && "type" in options) type = String((options as { type: unknown }).type);
    seen.push({ message, type });
  }) as typeof process.emitWarning);
  return seen;
}

// ---- addLocalFile -----------------------------------------------------------------------

describe("Image.addLocalFile", () => {
  it("with copy: true adds a COPY . / layer holding the file at its remote path", async () => {
    const dir = tmpDir();
    const file = writeFile(dir, "x.txt", "hello");
    const { layers, runtimeMounts } = await base().addLocalFile(file, "/app/x.txt", { copy: true }).describe();
    expect(layers).toHaveLength(2);
    expect(layers[1]!.dockerfileCommands).toEqual(["FROM base", "COPY . /"]);
    expect(layers[1]!.contextFiles).toEqual([{ path: "app/x.txt", sha256: sha256("hello"), mode: 0o644 }]);
    expect(runtimeMounts).toEqual([]);
  });

  it("keeps the file mode and renames to the remote path", async () => {
    const file = writeFile(tmpDir(), "tool.sh", "#!/bin/sh\n", 0o755);
    expect((await layerOf(base().addLocalFile(file, "/usr/local/bin/tool", { copy: true }))).contextFiles).toEqual([
      { path: "usr/local/bin/tool", sha256: sha256("#!/bin/sh\n"), mode: 0o755 },
    ]);
  });

  it("appends the basename for a trailing /", async () => {
    const file = writeFile(tmpDir(), "x.txt", "hello");
    expect(await pathsOf(base().addLocalFile(file, "/app/", { copy: true }))).toEqual(["app/x.txt"]);
    const { runtimeMounts } = await base().addLocalFile(file, "/app/").describe();
    expect(runtimeMounts).toEqual([{ kind: "file", localPath: file, remotePath: "/app/x.txt" }]);
  });

  it("rejects a relative remote path", () => {
    const file = writeFile(tmpDir(), "x.txt", "hello");
    expect(() => base().addLocalFile(file, "app/x.txt")).toThrow(InvalidError);
    expect(() => base().addLocalFile(file, "./x.txt", { copy: true })).toThrow(InvalidError);
  });

  it("raises NotFoundError for a missing local file", async () => {
    const missing = path.join(tmpDir(), "nope.txt");
    expect(await failure(() => base().addLocalFile(missing, "/nope.txt"))).toBeInstanceOf(NotFoundError);
    expect(await failure(() => base().addLocalFile(missing, "/nope.txt", { copy: true }))).toBeInstanceOf(NotFoundError);
  });
});

// ---- addLocalDir ------------------------------------------------------------------------

describe("Image.addLocalDir", () => {
  it("with copy: true places the directory's contents under the remote path", async () => {
    const dir = sampleDir();
    const layer = await layerOf(base().addLocalDir(dir, "/assets", { copy: true }));
    expect(layer.dockerfileCommands).toEqual(["FROM base", "COPY . /"]);
    expect(layer.contextFiles.map((f) => f.path)).toEqual(under("assets", ALL));
    expect(layer.contextFiles.find((f) => f.path === "assets/run.sh")).toEqual({
      path: "assets/run.sh",
      sha256: sha256("#!/bin/sh\necho hi\n"),
      mode: 0o755,
    });
    expect(layer.contextFiles.find((f) => f.path === "assets/sub/c.txt")).toEqual({
      path: "assets/sub/c.txt",
      sha256: sha256("gamma"),
      mode: 0o644,
    });
  });

  it("handles nested remote paths and /", async () => {
    const dir = sampleDir();
    expect(await pathsOf(base().addLocalDir(dir, "/srv/app/", { copy: true }))).toEqual(under("srv/app", ALL));
    expect(await pathsOf(base().addLocalDir(dir, "/", { copy: true }))).toEqual(ALL);
  });

  it("applies ignore patterns relative to the directory (`*.log` is top-level only)", async () => {
    const dir = sampleDir();
    expect(await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore: ["*.log"] }))).toEqual(
      under("d", ["a.txt", "run.sh", "sub/c.txt", "sub/d.log", "sub/e.py"]),
    );
    expect(await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore: ["**/*.log"] }))).toEqual(
      under("d", ["a.txt", "run.sh", "sub/c.txt", "sub/e.py"]),
    );
    expect(await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore: ["sub"] }))).toEqual(under("d", ["a.txt", "b.log", "run.sh"]));
    expect(await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore: ["**/*.log", "!sub/d.log"] }))).toEqual(
      under("d", ["a.txt", "run.sh", "sub/c.txt", "sub/d.log", "sub/e.py"]),
    );
  });

  it("accepts a FilePatternMatcher", async () => {
    const dir = sampleDir();
    expect(await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore: new FilePatternMatcher("**/*.txt") }))).toEqual(
      under("d", ["b.log", "run.sh", "sub/d.log", "sub/e.py"]),
    );
  });

  it("accepts an inverted matcher, keeping only what it matches", async () => {
    const dir = sampleDir();
    expect(await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore: new FilePatternMatcher("**/*.py").invert() }))).toEqual([
      "d/sub/e.py",
    ]);
    expect(
      await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore: new FilePatternMatcher("**/*.txt", "*.sh").invert() })),
    ).toEqual(under("d", ["a.txt", "run.sh", "sub/c.txt"]));
  });

  it("accepts a matcher read from a file, without comment stripping", async () => {
    const dir = sampleDir();
    const ignoreFile = writeFile(tmpDir(), "ignorefile", "*.log\n# run.sh\nsub/e.py\n");
    expect(await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore: FilePatternMatcher.fromFile(ignoreFile) }))).toEqual(
      under("d", ["a.txt", "run.sh", "sub/c.txt", "sub/d.log"]),
    );
  });

  it("accepts a callback on slash-separated relative paths", async () => {
    const dir = sampleDir();
    const seen: string[] = [];
    const ignore = (p: string) => {
      seen.push(p);
      return p.endsWith(".txt");
    };
    expect(await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore }))).toEqual(
      under("d", ["b.log", "run.sh", "sub/d.log", "sub/e.py"]),
    );
    expect(seen).toEqual(expect.arrayContaining(["a.txt", "sub/c.txt", "sub/e.py"]));
    expect(seen.every((p) => !path.isAbsolute(p) && !p.includes("\\"))).toBe(true);
    const noSub = (p: string) => p === "sub" || p.startsWith("sub/");
    expect(await pathsOf(base().addLocalDir(dir, "/d", { copy: true, ignore: noSub }))).toEqual(under("d", ["a.txt", "b.log", "run.sh"]));
  });

  it("changes the layer key when a file's content changes", async () => {
    const dir = sampleDir();
    const before = await layerOf(base().addLocalDir(dir, "/d", { copy: true }));
    writeFile(dir, "sub/c.txt", "GAMMA");
    const after = await layerOf(base().addLocalDir(dir, "/d", { copy: true }));
    expect(after.key).not.toBe(before.key);
    expect(after.contextFiles.find((f) => f.path === "d/sub/c.txt")!.sha256).toBe(sha256("GAMMA"));
  });

  it("rejects a relative remote path", () => {
    const dir = sampleDir();
    expect(() => base().addLocalDir(dir, "assets")).toThrow(InvalidError);
    expect(() => base().addLocalDir(dir, "assets", { copy: true })).toThrow(InvalidError);
  });

  it("raises NotFoundError for a missing directory", async () => {
    const missing = path.join(tmpDir(), "nope");
    const error = await failure(() => base().addLocalDir(missing, "/nope", { copy: true }));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toContain(`local dir ${missing} does not exist`);
    expect(await failure(() => base().addLocalDir(missing, "/nope"))).toBeInstanceOf(NotFoundError);
  });
});

// ---- copy: false (runtime mounts) -------------------------------------------------------

describe("addLocal* with copy: false", () => {
  it("adds no layer and lists the files in runtimeMounts", async () => {
    const dir = sampleDir();
    const file = path.join(dir, "a.txt");
    const image = base().aptInstall("git").addLocalFile(file, "/app/a.txt");
    const { layers, runtimeMounts } = await image.describe();
    expect(layers).toHaveLength(2);
    expect(layers.map((l) => l.dockerfileCommands[0])).toEqual(["FROM python:3.12.10-slim-bookworm", "FROM base"]);
    expect(runtimeMounts).toEqual([{ kind: "file", localPath: file, remotePath: "/app/a.txt" }]);
  });

  it("does not change the layers or their keys", async () => {
    const dir = sampleDir();
    const plain = await base().aptInstall("git").describe();
    const mounted = await base().aptInstall("git").addLocalDir(dir, "/data").describe();
    expect(mounted.layers).toEqual(plain.layers);
  });

  it("allows further addLocal* calls, which accumulate", async () => {
    const dir = sampleDir();
    const image = base()
      .addLocalFile(path.join(dir, "a.txt"), "/a.txt")
      .addLocalDir(dir, "/data", { ignore: ["*.log"] })
      .addLocalFile(path.join(dir, "b.log"), "/logs/");
    const { runtimeMounts, layers } = await image.describe();
    expect(layers).toHaveLength(1);
    expect(runtimeMounts).toEqual([
      { kind: "file", localPath: path.join(dir, "a.txt"), remotePath: "/a.txt" },
      { kind: "dir", localPath: dir, remotePath: "/data", ignore: ["*.log"] },
      { kind: "file", localPath: path.join(dir, "b.log"), remotePath: "/logs/b.log" },
    ]);
  });

  it("makes a later build step throw InvalidError", () => {
    const dir = sampleDir();
    const image = base().addLocalDir(dir, "/data");
    expect(() => image.runCommands("ls")).toThrow(InvalidError);
    expect(() => image.pipInstall("numpy")).toThrow(InvalidError);
    expect(() => image.env({ A: "1" })).toThrow(InvalidError);
    expect(() => image.dockerfileCommands("RUN true")).toThrow(InvalidError);
    expect(() => image.runCommands("ls")).toThrow("addLocal");
    // A copy step is a build step too (Modal's _copy_mount asserts there are no mount layers).
    expect(() => image.addLocalFile(path.join(dir, "a.txt"), "/a.txt", { copy: true })).toThrow(InvalidError);
  });

  it("leaves the image it was called on usable for build steps", async () => {
    const dir = sampleDir();
    const root = base();
    root.addLocalDir(dir, "/data");
    expect((await root.aptInstall("git").describe()).layers).toHaveLength(2);
  });
});

// ---- copy layers and forceBuild ---------------------------------------------------------

describe("copy layers and forceBuild", () => {
  it("addLocal* copy layers neither inherit nor pass on forceBuild (Modal's _copy_mount passes none)", async () => {
    const file = writeFile(tmpDir(), "x.txt", "x");
    const { layers } = await base()
      .pipInstall(["numpy"], { forceBuild: true })
      .addLocalFile(file, "/x.txt", { copy: true })
      .aptInstall("git")
      .describe();
    expect(layers.map((l) => l.forceBuild)).toEqual([false, true, false, false]);
  });
});

// ---- addLocalPythonSource ---------------------------------------------------------------

describe("Image.addLocalPythonSource", () => {
  function pythonRoot(): string {
    const root = tmpDir();
    writeFile(root, "kiln_test_pkg/__init__.py", "");
    writeFile(root, "kiln_test_pkg/util.py", "def f():\n    pass\n");
    writeFile(root, "kiln_test_pkg/data.json", "{}");
    writeFile(root, "kiln_test_pkg/sub/__init__.py", "X = 1\n");
    writeFile(root, "kiln_test_pkg/.hidden/x.py", "y = 2\n");
    writeFile(root, "kiln_test_pkg/__pycache__/util.cpython-312.pyc", "bytecode");
    writeFile(root, "kiln_test_mod.py", "Z = 3\n");
    return root;
  }

  it("copies a package to /root/<pkg> and a module to /root/<mod>.py, only .py files by default", async () => {
    process.env.PYTHONPATH = pythonRoot();
    const layer = await layerOf(base().addLocalPythonSource("kiln_test_pkg", "kiln_test_mod", { copy: true }));
    expect(layer.dockerfileCommands).toEqual(["FROM base", "COPY . /"]);
    // Dot-directories are not excluded (Modal quirk), non-.py files are.
    expect(layer.contextFiles.map((f) => f.path)).toEqual([
      "root/kiln_test_mod.py",
      "root/kiln_test_pkg/.hidden/x.py",
      "root/kiln_test_pkg/__init__.py",
      "root/kiln_test_pkg/sub/__init__.py",
      "root/kiln_test_pkg/util.py",
    ]);
    expect(layer.contextFiles.find((f) => f.path === "root/kiln_test_pkg/util.py")!.sha256).toBe(sha256("def f():\n    pass\n"));
  });

  it("takes an explicit ignore instead of the .py-only default", async () => {
    process.env.PYTHONPATH = pythonRoot();
    expect(await pathsOf(base().addLocalPythonSource("kiln_test_pkg", { copy: true, ignore: [] }))).toEqual([
      "root/kiln_test_pkg/.hidden/x.py",
      "root/kiln_test_pkg/__init__.py",
      "root/kiln_test_pkg/__pycache__/util.cpython-312.pyc",
      "root/kiln_test_pkg/data.json",
      "root/kiln_test_pkg/sub/__init__.py",
      "root/kiln_test_pkg/util.py",
    ]);
    expect(await pathsOf(base().addLocalPythonSource("kiln_test_pkg", { copy: true, ignore: ["data.json", "**/*.pyc"] }))).toEqual([
      "root/kiln_test_pkg/.hidden/x.py",
      "root/kiln_test_pkg/__init__.py",
      "root/kiln_test_pkg/sub/__init__.py",
      "root/kiln_test_pkg/util.py",
    ]);
  });

  it("resolves dotted names to subpackages", async () => {
    process.env.PYTHONPATH = pythonRoot();
    expect(await pathsOf(base().addLocalPythonSource("kiln_test_pkg.sub", { copy: true }))).toEqual(["root/kiln_test_pkg/sub/__init__.py"]);
  });

  it("finds modules in the current directory", async () => {
    const root = pythonRoot();
    const cwd = process.cwd();
    process.chdir(root);
    try {
      expect(await pathsOf(base().addLocalPythonSource("kiln_test_mod", { copy: true }))).toEqual(["root/kiln_test_mod.py"]);
    } finally {
      process.chdir(cwd);
    }
  });

  it("with copy: false lists runtime mounts at /root", async () => {
    const root = pythonRoot();
    process.env.PYTHONPATH = root;
    const { layers, runtimeMounts } = await base().addLocalPythonSource("kiln_test_pkg", "kiln_test_mod").describe();
    expect(layers).toHaveLength(1);
    expect(runtimeMounts).toHaveLength(2);
    expect(runtimeMounts[0]).toMatchObject({ kind: "dir", localPath: path.join(root, "kiln_test_pkg"), remotePath: "/root/kiln_test_pkg" });
    expect(runtimeMounts[1]).toMatchObject({
      kind: "file",
      localPath: path.join(root, "kiln_test_mod.py"),
      remotePath: "/root/kiln_test_mod.py",
    });
  });

  it("raises NotFoundError for a module that cannot be found", async () => {
    process.env.PYTHONPATH = tmpDir();
    expect(await failure(() => base().addLocalPythonSource("kiln_no_such_module_xyz", { copy: true }))).toBeInstanceOf(NotFoundError);
    expect(await failure(() => base().addLocalPythonSource("kiln_no_such_module_xyz"))).toBeInstanceOf(NotFoundError);
  });

  it("rejects non-string module names", () => {
    expect(() => base().addLocalPythonSource(42 as never)).toThrow(InvalidError);
  });
});

// ---- deprecated copy methods ------------------------------------------------------------

describe("deprecated copyLocalFile / copyLocalDir / copyMount", () => {
  it("copyLocalFile emits COPY <basename> ./ with the file at the context root", async () => {
    const warnings = captureWarnings();
    const file = writeFile(tmpDir(), "config.yml", "a: 1\n");
    const layer = await layerOf(base().copyLocalFile(file));
    expect(layer.dockerfileCommands).toEqual(["FROM base", "COPY config.yml ./"]);
    expect(layer.contextFiles).toEqual([{ path: "config.yml", sha256: sha256("a: 1\n"), mode: 0o644 }]);
    expect(await commandsOf(base().copyLocalFile(file, "/etc/app/"))).toEqual(["FROM base", "COPY config.yml /etc/app/"]);
    const warning = warnings.find((w) => w.message.includes("copyLocalFile"));
    expect(warning).toBeDefined();
    expect(warning!.type).toBe("DeprecationWarning");
    expect(warning!.message).toContain("addLocalFile");
  });

  it("copyLocalDir emits COPY . <remote> with the directory at the context root", async () => {
    const warnings = captureWarnings();
    const dir = sampleDir();
    const layer = await layerOf(base().copyLocalDir(dir));
    expect(layer.dockerfileCommands).toEqual(["FROM base", "COPY . ."]);
    expect(layer.contextFiles.map((f) => f.path)).toEqual(ALL);
    const ignored = base().copyLocalDir(dir, "/static", { ignore: ["**/*.log"] });
    expect(await commandsOf(ignored)).toEqual(["FROM base", "COPY . /static"]);
    expect(await pathsOf(ignored)).toEqual(["a.txt", "run.sh", "sub/c.txt", "sub/e.py"]);
    const warning = warnings.find((w) => w.message.includes("copyLocalDir"));
    expect(warning).toBeDefined();
    expect(warning!.type).toBe("DeprecationWarning");
    expect(warning!.message).toContain("addLocalDir");
  });

  it("copyMount emits COPY . <remote> with the mount's files", async () => {
    const warnings = captureWarnings();
    const dir = sampleDir();
    const mount = Mount.fromLocalDir(dir, { remotePath: "/" });
    const layer = await layerOf(base().copyMount(mount, "/static"));
    expect(layer.dockerfileCommands).toEqual(["FROM base", "COPY . /static"]);
    expect(layer.contextFiles.map((f) => f.path)).toEqual(ALL);
    expect(await commandsOf(base().copyMount(mount))).toEqual(["FROM base", "COPY . ."]);
    const warning = warnings.find((w) => w.message.includes("copyMount"));
    expect(warning).toBeDefined();
    expect(warning!.type).toBe("DeprecationWarning");
    expect(warning!.message).toMatch(/addLocalDir|addLocalFile/);
  });

  it("copyMount rejects a non-Mount", () => {
    captureWarnings();
    expect(() => base().copyMount({ sources: [] } as never)).toThrow(InvalidError);
  });

  it("raise NotFoundError for missing paths", async () => {
    captureWarnings();
    const missing = path.join(tmpDir(), "nope");
    expect(await failure(() => base().copyLocalFile(missing))).toBeInstanceOf(NotFoundError);
    expect(await failure(() => base().copyLocalDir(missing))).toBeInstanceOf(NotFoundError);
  });
});

// ---- Mount ------------------------------------------------------------------------------

describe("Mount", () => {
  it("fromLocalFile defaults to /<basename> and honours remotePath", async () => {
    captureWarnings();
    const file = writeFile(tmpDir(), "x.txt", "x");
    expect(await pathsOf(base().copyMount(Mount.fromLocalFile(file), "/etc"))).toEqual(["x.txt"]);
    expect(await pathsOf(base().copyMount(Mount.fromLocalFile(file, { remotePath: "/cfg/y.txt" })))).toEqual(["cfg/y.txt"]);
  });

  it("fromLocalDir places the directory at remotePath, with ignore", async () => {
    captureWarnings();
    const dir = sampleDir();
    expect(await pathsOf(base().copyMount(Mount.fromLocalDir(dir, { remotePath: "/data" })))).toEqual(under("data", ALL));
    expect(await pathsOf(base().copyMount(Mount.fromLocalDir(dir, { remotePath: "/", ignore: ["**/*.log", "sub/e.py"] })))).toEqual([
      "a.txt",
      "run.sh",
      "sub/c.txt",
    ]);
  });

  it("fromLocalDir defaults to /<directory name>, as Modal's Mount.from_local_dir", async () => {
    captureWarnings();
    const dir = sampleDir();
    expect(await pathsOf(base().copyMount(Mount.fromLocalDir(dir)))).toEqual(under(path.basename(dir), ALL));
  });

  it("anchors a relative remotePath at / (Modal: PurePosixPath('/', remote_path))", async () => {
    captureWarnings();
    const dir = sampleDir();
    expect(await pathsOf(base().copyMount(Mount.fromLocalDir(dir, { remotePath: "data" })))).toEqual(under("data", ALL));
  });

  it("extend combines mounts", async () => {
    captureWarnings();
    const dir = sampleDir();
    const file = writeFile(tmpDir(), "x.txt", "x");
    const mount = Mount.fromLocalDir(dir, { remotePath: "/d", ignore: ["sub"] }).extend(
      Mount.fromLocalFile(file, { remotePath: "/x.txt" }),
    );
    expect(await pathsOf(base().copyMount(mount, "/"))).toEqual(["d/a.txt", "d/b.log", "d/run.sh", "x.txt"]);
  });

  it("raises NotFoundError for missing paths", async () => {
    const missing = path.join(tmpDir(), "nope");
    expect(() => Mount.fromLocalDir(missing, { remotePath: "/x" })).toThrow(NotFoundError);
    expect(() => Mount.fromLocalFile(missing)).toThrow(NotFoundError);
  });
});
