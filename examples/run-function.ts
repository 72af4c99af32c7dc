/**
 * A build step written in TypeScript: `runFunction` sends the function's source, its
 * arguments and its declared globals; the runner calls it with `node` inside the image and
 * snapshots the result. Changing any of them rebuilds the layer.
 */
import { Image } from "@kiln-build/sdk";
import { runExample } from "./run-example.ts";

// Runs inside the image, so it may only use what the image has (here Node's built-ins).
async function writeManifest(name: string) {
  const { writeFileSync } = await import("node:fs");
  const declared = (globalThis as unknown as { MANIFEST_DIR: string }).MANIFEST_DIR;
  writeFileSync(`${declared}/${name}.json`, JSON.stringify({ name, builtAt: "build time" }));
}

export const image = Image.fromRegistry("node:22-bookworm-slim")
  .runCommands("mkdir -p /opt/manifests")
  .runFunction(writeManifest, { args: ["app"], globals: { MANIFEST_DIR: "/opt/manifests" } });

await runExample(image, import.meta.url);
