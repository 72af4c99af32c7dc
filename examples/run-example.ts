/**
 * Shared runner for the examples: when an example file is executed directly, build its image
 * on the Kiln server in KILN_SERVER_URL (with KILN_TOKEN), or, without a token, print the
 * layers it would build. `kiln build examples/<file>.ts` builds the same exported image.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Image } from "@kiln-build/sdk";

/** Builds (or describes) `image` if `moduleUrl` is the script node was started with. */
export async function runExample(image: Image, moduleUrl: string): Promise<void> {
  const entry = process.argv[1] && realpathSync(process.argv[1]);
  if (entry !== fileURLToPath(moduleUrl)) return;
  if (!process.env.KILN_TOKEN) {
    const { layers } = await image.describe();
    for (const [i, layer] of layers.entries()) {
      console.log(`# layer ${i + 1}/${layers.length}  key ${layer.key.slice(0, 12)}`);
      for (const line of layer.dockerfileCommands) console.log(`  ${line}`);
    }
    console.log("\nSet KILN_TOKEN (npm start prints one) to build this image on the local stack.");
    return;
  }
  const built = await image.build();
  console.log(`built ${built.imageId}\n  ${built.reference}\n  ${built.digest}`);
}
