/**
 * An image that builds without internet access: it starts from the busybox base image
 * `npm start` pushes to the built-in registry (`<server host>/dev/base:busybox`; override with
 * KILN_BASE_IMAGE), copies local files in and runs a step.
 *
 *   KILN_TOKEN=... npx kiln build examples/local-base.ts
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Image } from "@kiln-build/sdk";
import { runExample } from "./run-example.ts";

const server = new URL(process.env.KILN_SERVER_URL ?? "http://127.0.0.1:8787");
const base = process.env.KILN_BASE_IMAGE ?? `${server.host}/${process.env.KILN_WORKSPACE ?? "dev"}/base:busybox`;

// A small local site to copy into the image (a fixed path: reruns reuse it, nothing piles up).
const site = path.join(tmpdir(), "kiln-local-base-site");
mkdirSync(site, { recursive: true });
writeFileSync(path.join(site, "index.html"), "<h1>built by kiln</h1>\n");

export const image = Image.fromRegistry(base)
  .env({ SITE_DIR: "/srv/site" })
  .addLocalDir(site, "/srv/site", { copy: true })
  .runCommands("wc -c /srv/site/index.html > /srv/site/size.txt", "cat /srv/site/size.txt")
  .cmd(["httpd", "-f", "-h", "/srv/site"]);

await runExample(image, import.meta.url);
