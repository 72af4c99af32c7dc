/**
 * The pieces `npm start` (scripts/start.ts) assembles, each idempotent across restarts: the
 * local secrets file and state under `.wrangler/kiln-dev/` (git-ignored), child processes in
 * their own process groups, the development workspace, token and fleet made through the API,
 * and a busybox base image pushed to the built-in registry so a first build needs no internet.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { newWebhookSecret } from "@kiln-build/protocol";

/** Every scope: the development token drives the SDK, the CLI and the admin-ish commands. */
export const DEV_SCOPES = [
  "images:read",
  "images:write",
  "secrets:read",
  "secrets:write",
  "tags:write",
  "fleets:read",
  "fleets:write",
  "tokens:write",
  "webhooks:read",
  "webhooks:write",
];

/** What survives restarts (`state.json`); secrets live in their own 0600 files. */
export type DevState = { workspace: string; token?: string; fleetId?: string; signingSecret?: string };

/** Paths of the local stack's files. */
export type StackPaths = { root: string; persist: string; dev: string; secretsEnv: string; state: string; runner: string };

/** Where everything lives: `<root>/state` for wrangler's D1/R2/DO, `<root>/kiln-dev` for ours. */
export function stackPaths(root: string): StackPaths {
  const dev = path.join(root, "kiln-dev");
  return {
    root,
    persist: path.join(root, "state"),
    dev,
    secretsEnv: path.join(dev, "secrets.env"),
    state: path.join(dev, "state.json"),
    runner: path.join(dev, "runner"),
  };
}

/**
 * The Worker's secrets for local use, generated once: a dotenv file passed to wrangler dev
 * with `--env-file`. Not `.dev.vars` in the repository root, which `wrangler types` would
 * read into the checked-in Env type.
 */
export function localWorkerSecrets(paths: StackPaths): { adminToken: string } {
  mkdirSync(paths.dev, { recursive: true, mode: 0o700 });
  if (!existsSync(paths.secretsEnv)) {
    const adminToken = `kiln-dev-admin-${randomBytes(24).toString("hex")}`;
    const secretKey = randomBytes(32).toString("base64");
    writeFileSync(
      paths.secretsEnv,
      `# npm start: local Worker secrets (never committed; delete to regenerate)\nKILN_ADMIN_TOKEN=${adminToken}\nKILN_SECRET_KEY=${secretKey}\n`,
      { mode: 0o600 },
    );
  }
  // Files written before attestations existed get a signing key too (decision 0024).
  if (!/^KILN_ATTESTATION_KEY=/m.test(readFileSync(paths.secretsEnv, "utf8"))) {
    const { privateKey } = generateKeyPairSync("ed25519");
    const jwk = JSON.stringify({ ...privateKey.export({ format: "jwk" }), kid: `kiln-dev-${randomBytes(4).toString("hex")}` });
    appendFileSync(paths.secretsEnv, `KILN_ATTESTATION_KEY=${Buffer.from(jwk).toString("base64")}\n`);
  }
  const adminToken = /^KILN_ADMIN_TOKEN=(.+)$/m.exec(readFileSync(paths.secretsEnv, "utf8"))?.[1];
  if (!adminToken) throw new Error(`${paths.secretsEnv} has no KILN_ADMIN_TOKEN; delete the file and start again.`);
  return { adminToken };
}

/** Reads the saved state, or a fresh one for `workspace`. */
export function loadState(paths: StackPaths, workspace: string): DevState {
  try {
    const saved = JSON.parse(readFileSync(paths.state, "utf8")) as DevState;
    if (saved.workspace === workspace) return saved;
  } catch {
    // First start, or an unreadable file: begin again.
  }
  return { workspace };
}

/** Saves the state (0600: it holds the token and the fleet's signing secret). */
export function saveState(paths: StackPaths, state: DevState): void {
  writeFileSync(paths.state, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** Whether `port` on 127.0.0.1 is free. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** `preferred` if free, else any free port. */
export async function choosePort(preferred: number): Promise<number> {
  if (await portFree(preferred)) return preferred;
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether a command is on PATH. */
export function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

/** A child process in its own process group (so stopping it stops what it started) with its recent output. */
export type Child = { name: string; process: ChildProcess; output(): string; stop(graceMs?: number): Promise<void> };

/** Starts a long-running child; `echo` copies its output to ours. */
export function startChild(
  name: string,
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; echo: boolean },
): Child {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  const keep = (stream: NodeJS.WriteStream) => (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
    if (options.echo) stream.write(d);
  };
  child.stdout!.on("data", keep(process.stdout));
  child.stderr!.on("data", keep(process.stderr));
  const exited = () =>
    new Promise<void>((resolve) =>
      child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve()),
    );
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // Already gone.
    }
  };
  return {
    name,
    process: child,
    output: () => output,
    async stop(graceMs = 15_000) {
      signal("SIGTERM");
      if (!(await Promise.race([exited().then(() => true), sleep(graceMs).then(() => false)]))) signal("SIGKILL");
      await exited();
    },
  };
}

/** First wait before restarting a child that exited, doubled after each quick exit up to {@link RESTART_MAX_MS}. */
export const RESTART_FIRST_MS = 1_000;
export const RESTART_MAX_MS = 30_000;
/** A child that ran this long before exiting is restarted after the first wait again. */
export const RESTART_RESET_AFTER_MS = 60_000;

/**
 * How long to wait before restarting a child that exited after running `uptimeMs`, given the
 * wait before its previous restart (null: none yet). Pure, for tests.
 */
export function restartDelayMs(previousDelayMs: number | null, uptimeMs: number): number {
  if (previousDelayMs === null || uptimeMs >= RESTART_RESET_AFTER_MS) return RESTART_FIRST_MS;
  return Math.min(RESTART_MAX_MS, previousDelayMs * 2);
}

/**
 * Keeps `first` running: when it exits while `stopping()` is false, says so and starts it
 * again with `start()` after {@link restartDelayMs}; `onStart` gets every new child.
 */
export function superviseChild(
  first: Child,
  options: { start: () => Child; onStart: (child: Child) => void; stopping: () => boolean; say: (message: string) => void },
): void {
  let delay: number | null = null;
  const watch = (child: Child, startedAt: number) => {
    child.process.once("exit", (code, signal) => {
      if (options.stopping()) return;
      delay = restartDelayMs(delay, Date.now() - startedAt);
      const how = code !== null ? `code ${code}` : `signal ${signal}`;
      const tail = child.output().trim().split("\n").slice(-5).join("\n  ");
      options.say(`${child.name} exited with ${how}; restarting in ${delay / 1000} s${tail ? `. Its last output:\n  ${tail}` : ""}`);
      setTimeout(() => {
        if (options.stopping()) return;
        const next = options.start();
        options.onStart(next);
        watch(next, Date.now());
      }, delay).unref();
    });
  };
  watch(first, Date.now());
}

/** Polls `url` until it answers 2xx; false after `timeoutMs` or when `child` exits. */
export async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return true;
    await sleep(300);
  }
  return false;
}

/** A JSON call to the local API that throws with the answer on failure. */
export async function api<T>(
  url: string,
  token: string,
  method: string,
  apiPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: T }> {
  const res = await fetch(`${url}${apiPath}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json().catch(() => null)) as T;
  return { status: res.status, json };
}

/** The development workspace and a working token: reused when the saved one still works. */
export async function ensureWorkspaceAndToken(url: string, adminToken: string, state: DevState): Promise<string> {
  const ws = await api(url, adminToken, "POST", "/v1/workspaces", { name: state.workspace });
  if (ws.status !== 201 && ws.status !== 409)
    throw new Error(`creating workspace '${state.workspace}' failed: HTTP ${ws.status} ${JSON.stringify(ws.json)}`);
  if (state.token && (await api(url, state.token, "GET", "/v1/images?limit=1")).status === 200) return state.token;
  const created = await api<{ token: string }>(
    url,
    adminToken,
    "POST",
    "/v1/tokens",
    { name: "npm-start", scopes: DEV_SCOPES },
    { "x-kiln-workspace": state.workspace },
  );
  if (created.status !== 201) throw new Error(`creating a token failed: HTTP ${created.status} ${JSON.stringify(created.json)}`);
  return created.json.token;
}

/** The runner's signing secret, generated once. */
export function signingSecret(state: DevState): string {
  return state.signingSecret ?? newWebhookSecret();
}

/** Registers the local runner as a fleet, or points the saved fleet at its current URL and secret. */
export async function ensureFleet(
  url: string,
  token: string,
  state: DevState,
  runnerUrl: string,
  secret: string,
  admin: { token: string; workspace: string },
): Promise<string> {
  const fields = { url: `${runnerUrl}/v1/jobs`, signingSecret: secret, maxConcurrentBuilds: 2 };
  let fleetId = state.fleetId;
  const updated = fleetId
    ? await api(url, token, "PATCH", `/v1/fleets/${encodeURIComponent(fleetId)}`, { ...fields, trustedWithSecrets: false, disabled: false })
    : null;
  if (updated?.status !== 200) {
    const created = await api<{ id: string }>(url, token, "POST", "/v1/fleets", { name: "local-runner", gpuTypes: [], ...fields });
    if (created.status !== 201) throw new Error(`registering the runner failed: HTTP ${created.status} ${JSON.stringify(created.json)}`);
    fleetId = created.json.id;
  }
  // The local runner is this machine's own: trust it with secret values. Only an admin (fleets:admin) may.
  const trusted = await api(
    url,
    admin.token,
    "PATCH",
    `/v1/fleets/${encodeURIComponent(fleetId!)}`,
    { trustedWithSecrets: true },
    {
      "x-kiln-workspace": admin.workspace,
    },
  );
  if (trusted.status !== 200) throw new Error(`trusting the local runner failed: HTTP ${trusted.status} ${JSON.stringify(trusted.json)}`);
  return fleetId!;
}

/** Whether /bin/busybox is a static binary (Debian's busybox-static), usable alone in an image. */
export function staticBusybox(): boolean {
  if (!existsSync("/bin/busybox")) return false;
  const ldd = spawnSync("ldd", ["/bin/busybox"], { encoding: "utf8" });
  return `${ldd.stdout}${ldd.stderr}`.includes("not a dynamic executable") || `${ldd.stdout}${ldd.stderr}`.includes("statically linked");
}

/**
 * Pushes a busybox image (static busybox and its applet links) to `reference` unless the
 * registry already has it. Returns false when it was already there.
 */
export async function ensureBusyboxBase(registryUrl: string, reference: string, token: string, storageDir: string): Promise<boolean> {
  const [, repoPath] = /^[^/]+\/(.+)$/.exec(reference) ?? [];
  const [repo, tag] = repoPath!.split(":") as [string, string];
  const head = await fetch(`${registryUrl}/v2/${repo}/manifests/${tag}`, {
    method: "HEAD",
    headers: {
      authorization: `Basic ${Buffer.from(`dev:${token}`).toString("base64")}`,
      accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
    },
  });
  if (head.ok) return false;
  const work = mkdtempSync(path.join(storageDir, "busybox-"));
  try {
    const rootfs = path.join(work, "rootfs");
    for (const d of ["bin", "tmp", "etc", "root"]) mkdirSync(path.join(rootfs, d), { recursive: true });
    copyFileSync("/bin/busybox", path.join(rootfs, "bin/busybox"));
    chmodSync(path.join(rootfs, "bin/busybox"), 0o755);
    const applets = spawnSync("/bin/busybox", ["--list"], { encoding: "utf8" })
      .stdout.split("\n")
      .filter((a) => a && a !== "busybox");
    for (const applet of applets) symlinkSync("busybox", path.join(rootfs, "bin", applet));
    writeFileSync(path.join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    writeFileSync(path.join(rootfs, "etc/group"), "root:x:0:\n");
    writeFileSync(path.join(work, "Dockerfile"), "FROM scratch\nCOPY . /\n");
    const global = ["--root", path.join(storageDir, "root"), "--runroot", path.join(storageDir, "run"), "--storage-driver", "vfs"];
    const run = (args: string[]) => {
      const result = spawnSync("buildah", [...global, ...args], { encoding: "utf8" });
      if (result.status !== 0) throw new Error(`buildah ${args[0]} failed: ${result.stderr.slice(-1000)}`);
    };
    run(["bud", "--isolation", "chroot", "--quiet", "-f", path.join(work, "Dockerfile"), "-t", reference, rootfs]);
    run(["push", "--quiet", "--tls-verify=false", "--creds", `dev:${token}`, reference, `docker://${reference}`]);
    run(["rmi", "--all", "--force"]);
    return true;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
