// Shared helpers for the image-*.test.ts files. Importing this module registers no hooks:
// a test file opts in by calling useIsolatedEnv() / useTempDirs() at its top level.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, vi } from "vitest";
import { Image } from "../src/index.ts";

/** The KILN_* variables that change how an image is described. */
export const KILN_ENV_KEYS = ["KILN_IMAGE_BUILDER_VERSION", "KILN_FORCE_BUILD", "KILN_IGNORE_CACHE", "KILN_IMAGE_KEY", "KILN_IMAGE_ID"];

/**
 * Clears the KILN_* variables (and any `extraKeys`) before the file's tests run and restores
 * their previous values afterwards.
 */
export function useIsolatedEnv(extraKeys: readonly string[] = []): void {
  const keys = [...KILN_ENV_KEYS, ...extraKeys];
  const savedEnv: Record<string, string | undefined> = {};
  beforeAll(() => {
    for (const key of keys) {
      savedEnv[key] = process.env[key];
      delete process.env[key];
    }
  });
  afterAll(() => {
    for (const key of keys) {
      if (savedEnv[key] === undefined) delete process.env[key];
      else process.env[key] = savedEnv[key];
    }
  });
}

/** Returns a `tmpDir()` that makes a fresh temporary directory, removed after each test. */
export function useTempDirs(): () => string {
  const tempDirs: string[] = [];
  afterEach(() => {
    for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  return function tmpDir(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-"));
    tempDirs.push(dir);
    return dir;
  };
}

export function writeFile(dir: string, rel: string, content: string, mode = 0o644): string {
  const file = path.join(dir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  fs.chmodSync(file, mode);
  return file;
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export const base = () => Image.debianSlim();

/** The last layer of an image, described on `builderVersion` (the default when omitted). */
export async function layerOf(image: Image, builderVersion?: string) {
  const { layers } = await image.describe(builderVersion === undefined ? {} : { builderVersion });
  return layers.at(-1)!;
}

export async function commandsOf(image: Image, builderVersion?: string): Promise<string[]> {
  return (await layerOf(image, builderVersion)).dockerfileCommands;
}

/** The error a chain raises, whether Kiln raises it at call time or when lowering in describe(). */
export async function failure(build: () => Image): Promise<Error> {
  try {
    await build().describe();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the image definition to fail");
}

/** The context paths of an image's last layer. */
export async function pathsOf(image: Image): Promise<string[]> {
  return (await layerOf(image)).contextFiles.map((f) => f.path);
}

/** The files `writeSampleDir` writes, in the order a context walk lists them. */
export const SAMPLE_FILES = ["a.txt", "b.log", "run.sh", "sub/c.txt", "sub/d.log", "sub/e.py"];

/** Writes files at two levels, one executable, into `dir` and returns `dir`. */
export function writeSampleDir(dir: string): string {
  writeFile(dir, "a.txt", "alpha");
  writeFile(dir, "b.log", "blog");
  writeFile(dir, "run.sh", "#!/bin/sh\necho hi\n", 0o755);
  writeFile(dir, "sub/c.txt", "gamma");
  writeFile(dir, "sub/d.log", "dlog");
  writeFile(dir, "sub/e.py", "print()\n");
  return dir;
}

/** `rels` under the directory `prefix` ("" leaves them as they are). */
export const under = (prefix: string, rels: string[]) => rels.map((r) => (prefix ? `${prefix}/${r}` : r));

/** Captures process warnings as { message, type }; the test file restores the spy with `vi.restoreAllMocks()`. */
export function captureWarnings(): { message: string; type: string | undefined }[] {
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
