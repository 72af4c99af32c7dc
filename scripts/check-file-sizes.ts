/**
 * Part of `npm run check`: no TypeScript file of the repository is longer than 400 lines.
 * A file that long is usually two modules (STYLE.md, "Keep files small"). Generated files
 * (`worker-configuration.d.ts`) are exempt.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

const MAX_LINES = 400;
const ROOT = path.resolve(import.meta.dirname, "..");
const GENERATED = new Set(["worker-configuration.d.ts"]);

const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts", "*.mts", "*.cjs"], {
  cwd: ROOT,
  encoding: "utf8",
})
  .split("\n")
  // A file deleted but not yet committed is still in the index; it has no lines to count.
  .filter((file) => file !== "" && !GENERATED.has(file) && existsSync(path.join(ROOT, file)));

const tooLong = files
  .map((file) => ({ file, lines: readFileSync(path.join(ROOT, file), "utf8").split("\n").length - 1 }))
  .filter(({ lines }) => lines > MAX_LINES);

for (const { file, lines } of tooLong) console.error(`${file}: ${lines} lines (at most ${MAX_LINES}); split it into modules.`);
if (tooLong.length > 0) process.exit(1);
