/**
 * `npm run build`: compiles the published packages (protocol, sdk, runner) to ESM
 * JavaScript with declarations under each package's `dist/`, incrementally (`tsc -b`).
 *
 * TypeScript rewrites `./x.ts` to `./x.js` in emitted JavaScript
 * (`rewriteRelativeImportExtensions`) but leaves declaration files alone, and a consumer's
 * compiler refuses `.ts` specifiers in them (TS5097). So the declarations are rewritten
 * here, relative specifiers only, after every build.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");
const PACKAGES = ["protocol", "sdk", "runner"];
const TSC = path.join(ROOT, "node_modules/typescript/bin/tsc");

const built = spawnSync(process.execPath, [TSC, "-b", path.join(ROOT, "tsconfig.build.json")], { stdio: "inherit" });
if (built.status !== 0) process.exit(built.status ?? 1);

// `from "./x.ts"`, `import("../y.ts")`: relative specifiers that end in .ts/.mts.
const RELATIVE_TS_SPECIFIER = /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']+?)\.(m?)ts(["'])/g;

for (const pkg of PACKAGES) {
  for (const file of declarationFiles(path.join(ROOT, pkg, "dist"))) {
    const text = readFileSync(file, "utf8");
    const rewritten = text.replace(RELATIVE_TS_SPECIFIER, "$1$2.$3js$4");
    if (rewritten !== text) writeFileSync(file, rewritten);
  }
}

function* declarationFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* declarationFiles(full);
    else if (entry.name.endsWith(".d.ts")) yield full;
  }
}
