/**
 * Loads the user's image module for `kiln build` / `kiln describe`: `.ts`, `.mts`, `.cts`,
 * `.js`, `.mjs` and `.cjs`, in ESM and CommonJS projects alike (a project made by
 * `npm init -y` is CommonJS, yet image modules are written with `import`).
 *
 * jiti (decision 0016) transpiles TypeScript and module syntax on the fly. The SDK itself is
 * always loaded natively, so the `Image` a module exports and the errors a build throws are
 * the very classes this CLI checks with `instanceof`, not a second transpiled copy.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { createJiti } from "jiti";
import { CliError, EXIT } from "./output.ts";

/** Extensions `kiln build` accepts, in the order a bare path tries them. */
export const MODULE_EXTENSIONS = [".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"] as const;

/** Imports `file` and returns its exports (the default export included, as `default`). */
export async function loadImageModule(file: string): Promise<Record<string, unknown>> {
  const absolute = resolveModulePath(file);
  const jiti = createJiti(import.meta.url, {
    nativeModules: ["@kiln-build/sdk", "@kiln-build/protocol"],
    // The module is the user's to change between runs; a stale transpile cache would hide edits.
    fsCache: false,
    moduleCache: false,
    interopDefault: false,
  });
  try {
    return (await jiti.import(absolute)) as Record<string, unknown>;
  } catch (error) {
    throw new CliError(`Importing ${file} failed.`, {
      details: String((error as Error)?.stack ?? error),
      fix: "Fix the error in the module (its stack trace is above), then run the command again.",
    });
  }
}

function resolveModulePath(file: string): string {
  const absolute = path.resolve(file);
  if (existsSync(absolute) && statSync(absolute).isFile()) {
    if (!MODULE_EXTENSIONS.some((ext) => absolute.endsWith(ext))) {
      throw new CliError(`${file} is not a JavaScript or TypeScript module.`, {
        fix: `Pass a file ending in ${MODULE_EXTENSIONS.join(", ")} that exports an Image.`,
        exitCode: EXIT.usage,
      });
    }
    return absolute;
  }
  throw new CliError(`Cannot find ${file}.`, {
    fix: "Pass the path of a .ts, .mts, .js or .mjs module that exports an Image.",
    exitCode: EXIT.usage,
  });
}
