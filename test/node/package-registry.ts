/**
 * The Kiln packages as a user gets them: `npm pack` of every workspace package, served by a
 * minimal npm registry on loopback for the `@kiln-build` scope only (everything else still
 * comes from the configured registry). Installing from it is what `npm install
 * @kiln-build/sdk` and `npm install -g @kiln-build/runner` do after a release: real tarballs,
 * real dependency resolution, no workspace links.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "../..");
/** The published packages, floor first. */
export const PACKAGES = ["protocol", "sdk", "runner"] as const;

/** A running scoped registry and the tarballs it serves. */
export type PackageRegistry = {
  url: string;
  /** Tarball path per package name, e.g. `@kiln-build/sdk`. */
  tarballs: Map<string, string>;
  /** npm flags that route the `@kiln-build` scope here. */
  npmFlags: string[];
  close(): Promise<void>;
};

/** Packs every package into `dir` (after building them) and serves the tarballs. */
export async function startPackageRegistry(dir: string): Promise<PackageRegistry> {
  mkdirSync(dir, { recursive: true });
  execFileSync(process.execPath, [path.join(ROOT, "scripts/build-packages.ts")], { cwd: ROOT, stdio: "pipe" });
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--pack-destination", dir, ...PACKAGES.flatMap((p) => ["-w", p])], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }),
  ) as { name: string; version: string; filename: string }[];
  const tarballs = new Map(packed.map((p) => [p.name, path.join(dir, path.basename(p.filename))]));
  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? "/").slice(1));
    const tarball = [...tarballs.entries()].find(([, file]) => req.url === `/-/${path.basename(file)}`);
    if (tarball) {
      res.writeHead(200, { "content-type": "application/octet-stream" }).end(readFileSync(tarball[1]));
      return;
    }
    const file = tarballs.get(name);
    if (!file) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(packument(name, file, address(server))));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = address(server);
  return {
    url,
    tarballs,
    npmFlags: [`--@kiln-build:registry=${url}/`, "--no-audit", "--no-fund", "--prefer-offline"],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function address(server: Server): string {
  const bound = server.address();
  if (bound === null || typeof bound === "string") throw new Error("the package registry is not listening on TCP");
  return `http://127.0.0.1:${bound.port}`;
}

/** The registry document of one package: its manifest (from inside the tarball) and where to fetch it. */
function packument(name: string, file: string, base: string) {
  const bytes = readFileSync(file);
  const manifest = JSON.parse(execFileSync("tar", ["-xzOf", file, "package/package.json"], { encoding: "utf8" })) as {
    version: string;
  };
  const version = {
    ...manifest,
    _id: `${name}@${manifest.version}`,
    dist: {
      tarball: `${base}/-/${path.basename(file)}`,
      shasum: createHash("sha1").update(bytes).digest("hex"),
      integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
    },
  };
  return { name, "dist-tags": { latest: manifest.version }, versions: { [manifest.version]: version } };
}
