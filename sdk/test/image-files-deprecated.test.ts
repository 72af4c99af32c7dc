// The deprecated copyLocalFile/copyLocalDir/copyMount, and the Mount objects copyMount takes.
// Expected behaviour follows Modal's `_image.py` and `mount.py` (modal-notes.md §2.2 and §5).
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { InvalidError, Mount, NotFoundError } from "../src/index.ts";
import {
  base,
  captureWarnings,
  commandsOf,
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
afterEach(() => {
  vi.restoreAllMocks();
});
const sampleDir = () => writeSampleDir(tmpDir());

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
    expect(layer.contextFiles.map((f) => f.path)).toEqual(SAMPLE_FILES);
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
    expect(layer.contextFiles.map((f) => f.path)).toEqual(SAMPLE_FILES);
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
    expect(await pathsOf(base().copyMount(Mount.fromLocalDir(dir, { remotePath: "/data" })))).toEqual(under("data", SAMPLE_FILES));
    expect(await pathsOf(base().copyMount(Mount.fromLocalDir(dir, { remotePath: "/", ignore: ["**/*.log", "sub/e.py"] })))).toEqual([
      "a.txt",
      "run.sh",
      "sub/c.txt",
    ]);
  });

  it("fromLocalDir defaults to /<directory name>, as Modal's Mount.from_local_dir", async () => {
    captureWarnings();
    const dir = sampleDir();
    expect(await pathsOf(base().copyMount(Mount.fromLocalDir(dir)))).toEqual(under(path.basename(dir), SAMPLE_FILES));
  });

  it("anchors a relative remotePath at / (Modal: PurePosixPath('/', remote_path))", async () => {
    captureWarnings();
    const dir = sampleDir();
    expect(await pathsOf(base().copyMount(Mount.fromLocalDir(dir, { remotePath: "data" })))).toEqual(under("data", SAMPLE_FILES));
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
