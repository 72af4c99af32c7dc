/**
 * Quick start: define an image with the Kiln SDK and print its layers, offline.
 * Run with `npx node examples/quickstart.ts` from the repository root.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Image, Secret } from "kiln";

// A small local app to copy into the image.
const app = mkdtempSync(path.join(tmpdir(), "kiln-quickstart-"));
writeFileSync(path.join(app, "main.py"), 'print("hello from kiln")\n');

const image = Image.debianSlim("3.12")
  .aptInstall("git", "curl")
  .pipInstall(["requests", "numpy>=2"], { secrets: [Secret.fromName("pypi-mirror")] })
  .env({ APP_ENV: "production" })
  .workdir("/app")
  .addLocalDir(app, "/app", { copy: true })
  .cmd(["python", "main.py"]);

const description = await image.describe();
for (const [i, layer] of description.layers.entries()) {
  console.log(`# layer ${i}  key ${layer.key.slice(0, 12)}  context ${layer.context?.digest.slice(0, 19) ?? "-"}`);
  for (const line of layer.dockerfileCommands) console.log(`  ${line}`);
}
