/**
 * The real stack for registry tests and `npm run bench:registry`: `wrangler dev` on a free
 * loopback port with a temporary `--persist-to` directory (migrations applied first, secrets
 * passed with `--var`, nothing left in the repository), plus helpers to make workspaces and
 * tokens through the API and to run buildah and skopeo.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../../runner/test/helpers/registry.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
/** The admin token the harness passes to the Worker. */
export const ADMIN_TOKEN = "kiln-registry-test-admin-0123456789abcdef";
const SECRET_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/** Test-only Ed25519 attestation key (base64 of its private JWK), the same as vitest.config.ts's. */
export const TEST_ATTESTATION_KEY_B64 = Buffer.from(
  '{"kty":"OKP","crv":"Ed25519","kid":"kiln-test-1","x":"sPY09vxn8bXsHc0J8iDYMt_i97FM7wZWhA6HcnfaWL4","d":"PjDgk04IuqAB78ywz_hp9fhgFAu738ftPSEw87TuQKM"}',
).toString("base64");
/** The webhook retry schedule of the test stack: at once, then 1 s apart, four attempts in all. */
export const TEST_WEBHOOK_SCHEDULE_MS = [0, 1000, 1000, 1000];

/** A running `wrangler dev`. */
export type Stack = { url: string; host: string; dir: string; stop: () => Promise<void> };

/** A free TCP port on 127.0.0.1 (the runner tests' helper; the benchmarks import it from here). */
export { freePort };

/** Throws a clear error when a command-line tool the registry tests need is missing. */
export function requireTool(name: string, aptPackage = name): void {
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  if (found.status !== 0)
    throw new Error(`${name} is not installed; the registry tests push and pull with it. Fix: apt-get install -y ${aptPackage}`);
}

/**
 * Starts the Worker on wrangler dev with fresh local state. The Worker is bundled once into
 * the temporary directory and served with `no_bundle`, because wrangler dev reloads (and cuts
 * in-flight requests) whenever a source file it bundled changes. `transformConfig` rewrites
 * wrangler.toml's text first (bench/load.ts scales the request budgets to one machine).
 */
export async function startStack(options: { transformConfig?: (toml: string) => string } = {}): Promise<Stack> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-registry-"));
  const env = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` };
  const bundle = spawnSync(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", path.join(dir, "bundle")], {
    cwd: ROOT,
    env,
    encoding: "utf8",
  });
  if (bundle.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${bundle.stdout}\n${bundle.stderr}`);
  const config = (options.transformConfig ?? ((toml: string) => toml))(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"))
    .replace(/^main = .*$/m, `main = ${JSON.stringify(path.join(dir, "bundle/index.js"))}\nno_bundle = true`)
    .replace(/^migrations_dir = .*$/m, `migrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}`);
  const configPath = path.join(dir, "wrangler.toml");
  writeFileSync(configPath, config);
  const migrate = spawnSync(
    process.execPath,
    [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--persist-to", dir, "-c", configPath],
    { cwd: ROOT, env, encoding: "utf8" },
  );
  if (migrate.status !== 0) throw new Error(`wrangler d1 migrations apply failed:\n${migrate.stdout}\n${migrate.stderr}`);
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      WRANGLER,
      "dev",
      "-c",
      configPath,
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--persist-to",
      dir,
      "--show-interactive-dev-session=false",
      "--var",
      `KILN_ADMIN_TOKEN:${ADMIN_TOKEN}`,
      "--var",
      `KILN_SECRET_KEY:${SECRET_KEY}`,
      "--var",
      `KILN_ATTESTATION_KEY:${TEST_ATTESTATION_KEY_B64}`,
      // Local development mode for webhooks (decision 0017): receivers on loopback, and retries
      // seconds apart instead of the production schedule's minutes and hours.
      "--var",
      "WEBHOOKS_ALLOW_PRIVATE:true",
      "--var",
      `WEBHOOK_RETRY_SCHEDULE_MS:${TEST_WEBHOOK_SCHEDULE_MS.join(",")}`,
    ],
    { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let log = "";
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
    if (process.env.KILN_VERBOSE) process.stderr.write(d);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {}
      for (let i = 0; i < 50 && child.exitCode === null; i++) await sleep(100);
      if (child.exitCode === null) {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {}
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let attempt = 0; attempt < 240; attempt++) {
    if (child.exitCode !== null) break;
    if (
      await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { url, host: `127.0.0.1:${port}`, dir, stop };
    await sleep(250);
  }
  await stop();
  throw new Error(`wrangler dev did not become ready on ${url}:\n${log}`);
}

/** Creates a workspace and an API token with `scopes`; returns the workspace name and token. */
export async function newTenant(
  stack: Stack,
  name: string,
  scopes = ["images:read", "images:write"],
): Promise<{ workspace: string; token: string }> {
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
  const ws = await fetch(`${stack.url}/v1/workspaces`, { method: "POST", headers: admin, body: JSON.stringify({ name }) });
  if (ws.status !== 201) throw new Error(`create workspace: ${ws.status} ${await ws.text()}`);
  const tok = await fetch(`${stack.url}/v1/tokens`, {
    method: "POST",
    headers: { ...admin, "x-kiln-workspace": name },
    body: JSON.stringify({ name: "registry-test", scopes }),
  });
  if (tok.status !== 201) throw new Error(`create token: ${tok.status} ${await tok.text()}`);
  return { workspace: name, token: ((await tok.json()) as { token: string }).token };
}

/** Result of a command. */
export type Run = { status: number; stdout: string; stderr: string };

/** Runs a command (buildah, skopeo) without a shell; `input` is written to stdin. */
export function run(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...options.env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status: status ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** Runs a command and throws with its output unless it exits 0. */
export async function ok(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.status}:\n${result.stderr}\n${result.stdout}`);
  return result.stdout;
}
