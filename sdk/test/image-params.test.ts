import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PARAM_KEYS } from "../src/image-params.ts";
import { Image, InvalidError, Secret } from "../src/index.ts";
import { nearest } from "../src/param-check.ts";
import { useIsolatedEnv } from "./image-helpers.ts";

useIsolatedEnv();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-params-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const loose = (o: unknown) => o as any;

describe("options objects", () => {
  it("refuses a misspelt key, naming the nearest valid one", () => {
    expect(() => Image.debianSlim().pipInstall("x", loose({ indexURL: "https://i" }))).toThrow(
      /unknown option `indexURL`. Did you mean indexUrl\?/,
    );
    expect(() => Image.debianSlim().runCommands("true", loose({ forcebuild: true }))).toThrow(/Did you mean forceBuild\?/);
    expect(() => Image.debianSlim(loose({ python_version: "3.12" }))).toThrow(/Did you mean pythonVersion\?/);
    expect(() => Image.debianSlim().addLocalDir(dir, "/d", loose({ cpoy: true }))).toThrow(InvalidError);
  });

  it("lists the valid keys when nothing is close", () => {
    expect(() => Image.debianSlim().aptInstall("git", loose({ zzzzzzzzzz: 1 }))).toThrow(/Valid options: forceBuild, secrets, gpu, env/);
  });

  it("refuses Modal options Kiln does not support, saying why", () => {
    expect(() => Image.debianSlim().runCommands("true", loose({ cpu: 2 }))).toThrow(/`cpu` is not supported by Kiln/);
    expect(() => Image.debianSlim().pipInstall("x", loose({ memory: 1024 }))).toThrow(/`memory` is not supported/);
    expect(() => Image.debianSlim().runCommands("true", loose({ timeout: 5 }))).toThrow(/only runFunction has a per-step timeout/);
  });

  it("runFunction honours timeout and refuses cpu and memory", async () => {
    function setup() {}
    const image = Image.debianSlim().runFunction(setup, { timeout: 30 });
    const { layers } = await image.describe();
    expect(layers.at(-1)!.buildFunction!.timeoutSeconds).toBe(30);
    expect(() => Image.debianSlim().runFunction(setup, loose({ cpu: 1 }))).toThrow(/runFunction: option `cpu` is not supported/);
    expect(() => Image.debianSlim().runFunction(setup, loose({ memory: 512 }))).toThrow(/`memory` is not supported/);
  });

  it("checks build and describe options too", async () => {
    await expect(Image.debianSlim().build(loose({ forcebuild: true }))).rejects.toThrow(/Did you mean forceBuild\?/);
    await expect(Image.debianSlim().describe(loose({ builder_version: "2024.10" }))).rejects.toThrow(/Did you mean builderVersion\?/);
  });

  it("refuses a non-object options argument", () => {
    expect(() => Image.fromScratch(loose(3))).toThrow(/options must be an object/);
  });

  it("has a table entry for every params type's method", () => {
    expect(Object.keys(PARAM_KEYS)).toContain("runFunction");
    expect(nearest("indexURL", PARAM_KEYS.pipInstall)).toBe("indexUrl");
  });
});

describe("factories", () => {
  it("fromRegistry takes a positional Secret like the cloud factories", async () => {
    const secret = Secret.fromName("registry-creds");
    const positional = await Image.fromRegistry("ghcr.io/a/b:1", secret).describe();
    const keyword = await Image.fromRegistry("ghcr.io/a/b:1", { secret }).describe();
    expect(positional.layers[0]!.registryAuth).toEqual(keyword.layers[0]!.registryAuth);
    expect(positional.layers[0]!.registryAuth?.kind).toBe("static");
    const both = await Image.fromRegistry("ghcr.io/a/b:1", secret, { setupDockerfileCommands: ["RUN true"] }).describe();
    expect(both.layers[0]!.dockerfileCommands).toContain("RUN true");
    expect(() => Image.fromRegistry("ghcr.io/a/b:1", loose({ secrets: [secret] }))).toThrow(/takes one registry `secret`, not `secrets`/);
  });

  it("fromScratch honours forceBuild", async () => {
    expect((await Image.fromScratch({ forceBuild: true }).describe()).layers[0]!.forceBuild).toBe(true);
    expect((await Image.fromScratch().describe()).layers[0]!.forceBuild).toBe(false);
  });

  it("fromDockerfile refuses an unknown target and sends a known one in the layer spec and key", async () => {
    const file = path.join(dir, "Dockerfile");
    fs.writeFileSync(file, "FROM busybox AS builder\nRUN true\nFROM busybox AS final\nRUN true\n");
    await expect(Image.fromDockerfile(file, { target: "nope", contextDir: dir }).describe()).rejects.toThrow(/"nope" could not be found/);
    const builder = await Image.fromDockerfile(file, { target: "builder", contextDir: dir }).describe();
    const untargeted = await Image.fromDockerfile(file, { contextDir: dir }).describe();
    expect(builder.layers[0]!.dockerfileTarget).toBe("builder");
    expect(untargeted.layers[0]!.dockerfileTarget).toBeUndefined();
    // The stage built is part of what the layer is: another target is another key.
    expect(builder.layers[0]!.key).not.toBe(untargeted.layers[0]!.key);
  });
});
