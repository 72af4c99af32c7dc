// runFunction (JavaScript functions and Python `{ file, name }` refs), imports() and hydrate().
// Reference: Modal's `Image.run_function`, `Image.imports` and `Image.hydrate`
// (modal-notes.md §2.2 "run_function in detail" and "Other surfaces").
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ExecutionError, type Image, InvalidError, NotFoundError, Secret } from "../src/index.ts";
import { base, failure, layerOf, useIsolatedEnv, useTempDirs, writeFile } from "./image-helpers.ts";

// ---- helpers ----------------------------------------------------------------------------

useIsolatedEnv();
const tmpDir = useTempDirs();
afterEach(() => {
  delete process.env.KILN_IMAGE_KEY;
  delete process.env.KILN_IMAGE_ID;
  vi.restoreAllMocks();
});

function downloadModel(name: string, opts: { revision: string }) {
  return `${name}@${opts.revision}`;
}

// ---- runFunction: JavaScript ------------------------------------------------------------

describe("Image.runFunction with a JavaScript function", () => {
  it("adds a FROM base layer carrying the function's source, args, kwargs and globals", async () => {
    const image = base().runFunction(downloadModel, {
      args: ["gpt2", { revision: "main" }],
      kwargs: { verbose: true },
      globals: { MODEL_DIR: "/models", SIZES: [1, 2] },
    });
    const { layers } = await image.describe();
    expect(layers).toHaveLength(2);
    const layer = layers[1]!;
    expect(layer.dockerfileCommands).toEqual(["FROM base"]);
    expect(layer.contextFiles).toEqual([]);
    expect(layer.buildFunction).not.toBeNull();
    expect(layer.buildFunction!.language).toBe("javascript");
    expect(layer.buildFunction!.name).toBe("downloadModel");
    expect(layer.buildFunction!.source).toBe(downloadModel.toString());
    expect(layer.buildFunction!.args).toEqual(["gpt2", { revision: "main" }]);
    expect(layer.buildFunction!.kwargs).toEqual({ verbose: true });
    expect(layer.buildFunction!.globals).toEqual({ MODEL_DIR: "/models", SIZES: [1, 2] });
  });

  it("defaults args, kwargs and globals to empty", async () => {
    function noArgs() {
      return 1;
    }
    const fn = (await layerOf(base().runFunction(noArgs))).buildFunction!;
    expect(fn.args).toEqual([]);
    expect(fn.kwargs).toEqual({});
    expect(fn.globals).toEqual({});
    expect(fn.source).toBe(noArgs.toString());
  });

  it("accepts a named arrow function and an async function", async () => {
    const warmCache = async () => {
      await Promise.resolve();
    };
    async function fetchWeights() {
      await Promise.resolve();
    }
    expect((await layerOf(base().runFunction(warmCache))).buildFunction!.name).toBe("warmCache");
    expect((await layerOf(base().runFunction(fetchWeights))).buildFunction!.source).toBe(fetchWeights.toString());
  });

  it("changes the key when the source changes, and not otherwise", async () => {
    const first = (() => {
      function step() {
        return 1;
      }
      return step;
    })();
    const second = (() => {
      function step() {
        return 2;
      }
      return step;
    })();
    const again = (() => {
      function step() {
        return 1;
      }
      return step;
    })();
    const k1 = (await layerOf(base().runFunction(first))).key;
    const k2 = (await layerOf(base().runFunction(second))).key;
    const k3 = (await layerOf(base().runFunction(again))).key;
    expect(k1).not.toBe(k2);
    expect(k1).toBe(k3);
  });

  it("changes the key when args, kwargs or globals change", async () => {
    const key = async (params: Parameters<Image["runFunction"]>[1]) => (await layerOf(base().runFunction(downloadModel, params))).key;
    const k = await key({ args: ["a"] });
    expect(await key({ args: ["a"] })).toBe(k);
    expect(await key({ args: ["b"] })).not.toBe(k);
    expect(await key({ args: ["a"], kwargs: { x: 1 } })).not.toBe(k);
    expect(await key({ args: ["a"], globals: { G: 1 } })).not.toBe(k);
  });

  it("keeps the timeout out of the key (Modal leaves timeout out of the definition)", async () => {
    const a = await layerOf(base().runFunction(downloadModel, { timeout: 60 }));
    const b = await layerOf(base().runFunction(downloadModel, { timeout: 7200 }));
    expect(a.key).toBe(b.key);
  });

  it("changes with the parent chain", async () => {
    const a = await layerOf(base().runFunction(downloadModel));
    const b = await layerOf(base().aptInstall("git").runFunction(downloadModel));
    expect(a.key).not.toBe(b.key);
  });

  it("rejects anonymous functions", () => {
    expect(() => base().runFunction(() => 1)).toThrow(InvalidError);
    expect(() => base().runFunction(() => 1)).toThrow(InvalidError);
  });

  it("rejects values that are not functions or { file, name }", () => {
    expect(() => base().runFunction(42 as never)).toThrow(InvalidError);
    expect(() => base().runFunction(null as never)).toThrow(InvalidError);
    expect(() => base().runFunction({ file: "x.py" } as never)).toThrow(InvalidError);
  });

  it("rejects arguments that are not JSON values", () => {
    expect(() => base().runFunction(downloadModel, { args: [new Date(0)] })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { args: [() => 1] })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { args: [Number.NaN] })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { args: [Number.POSITIVE_INFINITY] })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { kwargs: { when: new Date(0) } })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { kwargs: { n: 10n } as never })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { globals: { re: /x/ } })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { args: [{ nested: [new Map()] }] })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { args: [undefined] })).toThrow(InvalidError);
  });

  it("rejects arguments larger than 2 MiB", () => {
    const big = "x".repeat(2 * 1024 * 1024 + 1);
    expect(() => base().runFunction(downloadModel, { args: [big] })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { kwargs: { big } })).toThrow(InvalidError);
    expect(() => base().runFunction(downloadModel, { args: [big] })).toThrow("too large");
    // Just under the limit is fine.
    expect(() => base().runFunction(downloadModel, { args: ["x".repeat(1024 * 1024)] })).not.toThrow();
  });

  it("inherits forceBuild from earlier layers and passes it on (self.force_build or force_build)", async () => {
    const { layers } = await base().pipInstall(["numpy"], { forceBuild: true }).runFunction(downloadModel).aptInstall("git").describe();
    expect(layers.map((l) => l.forceBuild)).toEqual([false, true, true, true]);
    const own = await base().runFunction(downloadModel, { forceBuild: true }).aptInstall("git").describe();
    expect(own.layers.map((l) => l.forceBuild)).toEqual([false, true, true]);
  });

  it("does not mutate the image it was called on", async () => {
    const root = base();
    const before = await root.describe();
    root.runFunction(downloadModel, { args: ["a"] });
    expect(await root.describe()).toEqual(before);
  });

  it("cannot follow a runtime mount", () => {
    const file = writeFile(tmpDir(), "x.txt", "x");
    expect(() => base().addLocalFile(file, "/x.txt").runFunction(downloadModel)).toThrow(InvalidError);
  });

  it("validates secrets and gpu", async () => {
    expect(() => base().runFunction(downloadModel, { secrets: ["s"] as never })).toThrow(InvalidError);
    const layer = await layerOf(base().runFunction(downloadModel, { gpu: "a10g", secrets: [Secret.fromName("hf")] }));
    expect(layer.buildFunction).not.toBeNull();
  });
});

// ---- runFunction: Python ----------------------------------------------------------------

describe("Image.runFunction with a Python { file, name }", () => {
  const MODULE = "import os\n\ndef download_model(name='gpt2'):\n    os.makedirs('/models', exist_ok=True)\n";

  it("reads the module's source from the file", async () => {
    const file = writeFile(tmpDir(), "build_steps.py", MODULE);
    const layer = await layerOf(base().runFunction({ file, name: "download_model" }, { args: ["bert"], kwargs: { name: "x" } }));
    expect(layer.dockerfileCommands).toEqual(["FROM base"]);
    expect(layer.buildFunction!.language).toBe("python");
    expect(layer.buildFunction!.name).toBe("download_model");
    expect(layer.buildFunction!.source).toBe(MODULE);
    expect(layer.buildFunction!.args).toEqual(["bert"]);
    expect(layer.buildFunction!.kwargs).toEqual({ name: "x" });
  });

  it("changes the key when the module or the function name changes", async () => {
    const dir = tmpDir();
    const file = writeFile(dir, "build_steps.py", `${MODULE}\ndef other():\n    pass\n`);
    const a = (await layerOf(base().runFunction({ file, name: "download_model" }))).key;
    const b = (await layerOf(base().runFunction({ file, name: "other" }))).key;
    expect(a).not.toBe(b);
    writeFile(dir, "build_steps.py", `${MODULE}\ndef other():\n    return 1\n`);
    const c = (await layerOf(base().runFunction({ file, name: "download_model" }))).key;
    expect(c).not.toBe(a);
  });

  it("raises NotFoundError for a missing file", async () => {
    const missing = path.join(tmpDir(), "nope.py");
    expect(await failure(() => base().runFunction({ file: missing, name: "f" }))).toBeInstanceOf(NotFoundError);
  });

  it("rejects a name that is not a Python identifier", () => {
    const file = writeFile(tmpDir(), "build_steps.py", MODULE);
    expect(() => base().runFunction({ file, name: "download-model" })).toThrow(InvalidError);
    expect(() => base().runFunction({ file, name: "1abc" })).toThrow(InvalidError);
    expect(() => base().runFunction({ file, name: "" })).toThrow(InvalidError);
    expect(() => base().runFunction({ file, name: "a.b" })).toThrow(InvalidError);
  });
});

// ---- imports() --------------------------------------------------------------------------

describe("Image.imports", () => {
  // A variable specifier keeps tsc and Vite from resolving the module ahead of time.
  const missingModule: string = "kiln-no-such-module";
  const importMissing = async () => {
    await import(/* @vite-ignore */ missingModule);
    return "loaded";
  };

  it("swallows a missing module outside the image, with a warning", async () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const image = base().pipInstall("torch");
    await expect(image.imports(importMissing)).resolves.toBeUndefined();
    expect(warn).toHaveBeenCalled();
    expect(String(warn.mock.calls[0]![0])).toContain("kiln-no-such-module");
  });

  it("returns the callback's value when the import succeeds", async () => {
    const image = base();
    await expect(image.imports(async () => (await import("node:path")).posix.join("a", "b"))).resolves.toBe("a/b");
    await expect(image.imports(() => 7)).resolves.toBe(7);
  });

  it("rethrows inside the image, identified by KILN_IMAGE_KEY = its last layer key", async () => {
    vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const image = base().pipInstall("torch");
    const { layers } = await image.describe();
    const saved = process.env.KILN_IMAGE_KEY;
    process.env.KILN_IMAGE_KEY = layers.at(-1)!.key;
    try {
      await expect(image.imports(importMissing)).rejects.toThrow("kiln-no-such-module");
      // The parent image is a different image: still swallowed there.
      await expect(base().imports(importMissing)).resolves.toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.KILN_IMAGE_KEY;
      else process.env.KILN_IMAGE_KEY = saved;
    }
    await expect(image.imports(importMissing)).resolves.toBeUndefined();
  });

  it("lets errors other than a missing module propagate", async () => {
    vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const image = base();
    await expect(
      image.imports(() => {
        throw new TypeError("boom");
      }),
    ).rejects.toThrow(TypeError);
    await expect(
      image.imports(async () => {
        throw new Error("async boom");
      }),
    ).rejects.toThrow("async boom");
  });
});

// ---- hydrate() --------------------------------------------------------------------------

describe("Image.hydrate", () => {
  it("raises ExecutionError for an image that was never built", async () => {
    await expect(base().hydrate()).rejects.toThrow(ExecutionError);
    await expect(base().pipInstall("numpy").runFunction(downloadModel).hydrate()).rejects.toThrow(ExecutionError);
    expect(base().imageId).toBeUndefined();
  });
});
