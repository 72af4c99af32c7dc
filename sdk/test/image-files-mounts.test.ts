// Local files attached at container start-up (addLocal* without copy), and how copy layers
// treat forceBuild.
// Expected behaviour follows Modal's `_image.py` and `mount.py` (modal-notes.md §2.2 and §5).
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InvalidError } from "../src/index.ts";
import { base, useIsolatedEnv, useTempDirs, writeFile, writeSampleDir } from "./image-helpers.ts";

useIsolatedEnv();
const tmpDir = useTempDirs();
const sampleDir = () => writeSampleDir(tmpDir());

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
