// Local files copied into a layer: addLocalFile and addLocalDir (remote paths, ignore rules, keys).
// Expected behaviour follows Modal's `_image.py` and `mount.py` (modal-notes.md §2.2 and §5).
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FilePatternMatcher, InvalidError, NotFoundError } from "../src/index.ts";
import {
  base,
  failure,
  layerOf,
  pathsOf,
  SAMPLE_FILES,
  sha256,
  under,
  useIsolatedEnv,
  useTempDirs,
  writeFile,
  writeSampleDir,
} from "./image-helpers.ts";

useIsolatedEnv();
const tmpDir = useTempDirs();
const sampleDir = () => writeSampleDir(tmpDir());

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
    expect(layer.contextFiles.map((f) => f.path)).toEqual(under("assets", SAMPLE_FILES));
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
    expect(await pathsOf(base().addLocalDir(dir, "/srv/app/", { copy: true }))).toEqual(under("srv/app", SAMPLE_FILES));
    expect(await pathsOf(base().addLocalDir(dir, "/", { copy: true }))).toEqual(SAMPLE_FILES);
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
