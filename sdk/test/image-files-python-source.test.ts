// addLocalPythonSource: Python modules and packages found locally, placed under /root.
// Expected behaviour follows Modal's `_image.py` and `mount.py` (modal-notes.md §2.2 and §5).
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { InvalidError, NotFoundError } from "../src/index.ts";
import { base, failure, layerOf, pathsOf, sha256, useIsolatedEnv, useTempDirs, writeFile } from "./image-helpers.ts";

useIsolatedEnv(["PYTHONPATH"]);
const tmpDir = useTempDirs();
afterEach(() => {
  delete process.env.PYTHONPATH;
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
