/**
 * Quick start: a Debian image with apt and pip packages, an environment variable and local
 * files copied in. `npx node examples/quickstart.ts` builds it on the local stack.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Image } from "@kiln-build/sdk";
import { runExample } from "./run-example.ts";

// A small local app to copy into the image.
const app = mkdtempSync(path.join(tmpdir(), "kiln-quickstart-"));
writeFileSync(path.join(app, "main.py"), 'print("hello from kiln")\n');

export const image = Image.debianSlim("3.12")
  .aptInstall("git", "curl")
  .pipInstall("requests", "numpy>=2")
  .env({ APP_ENV: "production" })
  .workdir("/app")
  .addLocalDir(app, "/app", { copy: true })
  .cmd(["python", "main.py"]);

await runExample(image, import.meta.url);
