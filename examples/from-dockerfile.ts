/**
 * An image from an existing multi-stage Dockerfile. Kiln sends only the context paths
 * BuildKit would read (here `src/`), minus the `.dockerignore`d files.
 */
import { fileURLToPath } from "node:url";
import { Image } from "@kiln-build/sdk";
import { runExample } from "./run-example.ts";

const dir = fileURLToPath(new URL("./dockerfile-app/", import.meta.url));

export const image = Image.fromDockerfile(`${dir}Dockerfile`, { contextDir: dir, buildArgs: { BASE: "debian:bookworm-slim" } }).env({
  GREETING_FILE: "/etc/greeting.txt",
});

await runExample(image, import.meta.url);
