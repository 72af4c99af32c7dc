// The packages as a team adopts them: every package packed with `npm pack`, served by a
// registry for the @kiln-build scope and installed into projects outside the repository
// (no workspace links). The SDK in an ESM project, in strict TypeScript (nodenext and
// bundler, no skipLibCheck), from CommonJS, its `kiln` bin; then `kiln build` of a .ts module
// in an `npm init -y` project, built by a globally installed `kiln-runner` on the real stack.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { KILN_VERSION } from "@kiln-build/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxRootfs } from "../../runner/test/helpers/base-images.ts";
import { newWorkspace, privateBuildah, pushBaseImage, requireE2eTools, sharedStack, startLocalRunner } from "./e2e-stack.ts";
import { type PackageRegistry, startPackageRegistry } from "./package-registry.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const TSC = path.join(ROOT, "node_modules/typescript/bin/tsc");
let work: string;
let registry: PackageRegistry;

/** The environment of a user's shell: this Node 22 first on PATH, none of npm's or vitest's variables. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm_|NODE_OPTIONS$|VITEST|INIT_CWD$)/i.test(key)) env[key] = value;
  }
  return { ...env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ""}`, ...extra };
}

type Run = { code: number; stdout: string; stderr: string };

/** Runs a command in `cwd` as a user would; resolves with its exit code and output. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = userEnv()): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Like `run`, but fails the test with the output when the command fails. */
async function ok(command: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<string> {
  const result = await run(command, args, cwd, env);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
  return result.stdout;
}

/** A new project made by `npm init -y` (CommonJS), or ESM with `esm: true`, with `deps` installed. */
async function project(name: string, deps: string[], { esm = false } = {}): Promise<string> {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  await ok("npm", ["init", "-y"], dir);
  if (esm) {
    const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ ...manifest, type: "module" }, null, 2));
  }
  await ok("npm", ["install", ...registry.npmFlags, ...deps], dir);
  return dir;
}

const THREE_LAYERS = `Image.debianSlim("3.12").aptInstall("git").pipInstall(["requests"], { indexUrl: "https://pypi.org/simple" })`;

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), "kiln-packaging-"));
  registry = await startPackageRegistry(path.join(work, "tarballs"));
}, 300_000);

afterAll(async () => {
  await registry?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the packed tarballs", () => {
  it("hold the compiled package, its README and LICENSE, and no sources or tests", async () => {
    for (const [name, tarball] of registry.tarballs) {
      const files = (await ok("tar", ["-tzf", tarball], work)).trim().split("\n");
      expect(files, name).toContain("package/LICENSE");
      expect(files, name).toContain("package/README.md");
      expect(files, name).toContain("package/dist/index.js");
      expect(files, name).toContain("package/dist/index.d.ts");
      expect(
        files.filter((f) => /^package\/(src|test)\//.test(f)),
        name,
      ).toEqual([]);
      const manifest = JSON.parse(await ok("tar", ["-xzOf", tarball, "package/package.json"], work));
      expect(manifest.version, `${name} shares the one version`).toBe(KILN_VERSION);
    }
  });
});

describe("@kiln-build/sdk installed from its tarball", { timeout: 300_000 }, () => {
  let esm: string;
  let cjs: string;

  beforeAll(async () => {
    [esm, cjs] = await Promise.all([
      project("esm", ["@kiln-build/sdk", "@types/node@22"], { esm: true }),
      project("cjs", ["@kiln-build/sdk"]),
    ]);
  }, 300_000);

  it("imports in a JavaScript ESM project and describes a three-layer image", async () => {
    writeFileSync(
      path.join(esm, "describe.js"),
      `import { Image } from "@kiln-build/sdk";\nconst { layers } = await ${THREE_LAYERS}.describe();\nconsole.log(JSON.stringify(layers.map((l) => ({ key: l.key, first: l.dockerfileCommands[0] }))));\n`,
    );
    const layers = JSON.parse(await ok(process.execPath, ["describe.js"], esm)) as { key: string; first: string }[];
    expect(layers).toHaveLength(3);
    for (const layer of layers) expect(layer.key).toMatch(/^[0-9a-f]{64}$/);
    expect(layers[0]!.first).toMatch(/^FROM /);
    expect(layers.slice(1).map((l) => l.first)).toEqual(["FROM base", "FROM base"]);
  });

  it("type-checks in strict TypeScript with nodenext and with bundler resolution, without skipLibCheck", async () => {
    writeFileSync(
      path.join(esm, "check.ts"),
      [
        `import { Image, ImageBuildError, InvalidError, KilnClient, type ImageBuildParams } from "@kiln-build/sdk";`,
        `const image: Image = ${THREE_LAYERS};`,
        `const params: ImageBuildParams = { forceBuild: false, logs: false };`,
        `export async function build(client: KilnClient): Promise<string> {`,
        `  try {`,
        `    return (await image.build({ ...params, client })).imageId ?? "";`,
        `  } catch (error) {`,
        `    if (error instanceof ImageBuildError) return String(error.exitCode);`,
        `    if (error instanceof InvalidError) return error.message;`,
        `    throw error;`,
        `  }`,
        `}`,
        "",
      ].join("\n"),
    );
    const base = { strict: true, noEmit: true, target: "es2022", types: ["node"], skipLibCheck: false };
    const configs = {
      "tsconfig.nodenext.json": { ...base, module: "nodenext", moduleResolution: "nodenext" },
      "tsconfig.bundler.json": { ...base, module: "preserve", moduleResolution: "bundler" },
    };
    for (const [file, compilerOptions] of Object.entries(configs)) {
      writeFileSync(path.join(esm, file), JSON.stringify({ compilerOptions, files: ["check.ts"] }, null, 2));
      const result = await run(process.execPath, [TSC, "-p", file], esm);
      expect(`${result.stdout}${result.stderr}`, file).toBe("");
      expect(result.code, file).toBe(0);
    }
  });

  it("loads with require() from CommonJS", async () => {
    const script = `const { Image, InvalidError } = require("@kiln-build/sdk");\n${THREE_LAYERS.replace(/^/, "void ")};\ntry { Image.debianSlim("2.7"); } catch (e) { console.log(e instanceof InvalidError ? "InvalidError" : String(e)); }\n`;
    writeFileSync(path.join(cjs, "check.cjs"), script);
    expect((await ok(process.execPath, ["check.cjs"], cjs)).trim()).toBe("InvalidError");
  });

  it("runs its kiln bin: npx kiln --version", async () => {
    expect((await ok("npx", ["--no-install", "kiln", "--version"], cjs)).trim()).toBe(KILN_VERSION);
  });
});

describe("kiln build in an npm init -y project, built by an installed kiln-runner", { timeout: 900_000 }, () => {
  it("builds a .ts image module and the image is pullable", async () => {
    requireE2eTools("buildah", "busybox");
    const global = path.join(work, "global");
    await ok("npm", ["install", "-g", "--prefix", global, ...registry.npmFlags, "@kiln-build/runner"], work);
    const runnerBin = path.join(global, "bin", "kiln-runner");
    expect((await ok(runnerBin, ["--version"], work, userEnv())).trim()).toBe(KILN_VERSION);

    const stack = await sharedStack();
    const tenant = await newWorkspace(stack, "packaging");
    const [runner, base, app] = await Promise.all([
      startLocalRunner(stack, tenant, { command: [runnerBin], env: { PATH: userEnv().PATH! } }),
      busyboxRootfs().then((rootfs) => pushBaseImage(stack, tenant, rootfs, "busybox:1")),
      project("app", ["@kiln-build/sdk"]),
    ]);
    const buildah = await privateBuildah();
    try {
      const marker = `packaged-${Date.now()}`;
      writeFileSync(
        path.join(app, "image.ts"),
        `import { Image } from "@kiln-build/sdk";\nconst marker: string = ${JSON.stringify(marker)};\nexport default Image.fromRegistry(${JSON.stringify(base)}).runCommands(\`echo \${marker} > /marker.txt\`);\n`,
      );
      const env = userEnv({ KILN_SERVER_URL: stack.url, KILN_TOKEN: tenant.token });
      const built = JSON.parse(await ok("npx", ["--no-install", "kiln", "--json", "build", "image.ts"], app, env)) as {
        imageId: string;
        reference: string;
        digest: string;
      };
      expect(built.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      const container = (
        await buildah.run("from", "--tls-verify=false", "--creds", `x:${tenant.token}`, `docker://${built.reference}`)
      ).trim();
      expect((await buildah.run("run", "--isolation", "chroot", container, "--", "cat", "/marker.txt")).trim()).toBe(marker);
    } finally {
      buildah.dispose();
      await runner.stop();
    }
  });
});
