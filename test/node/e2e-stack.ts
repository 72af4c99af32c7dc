/**
 * The real local stack for end-to-end tests and `npm run bench:e2e`: the Worker on
 * `wrangler dev` (registry-harness.ts), workspaces and tokens made through the admin API, and
 * reference runners (`kiln-runner serve`) as real child processes registered as fleets.
 *
 * One `wrangler dev` is shared by every e2e test file of a vitest run (`sharedStack()`): the
 * first file to ask starts it in a small detached process (e2e-stack-daemon.ts) that stops it
 * when the vitest process exits; later files find its address in a state file. Each file
 * makes its own workspace, so fleets, runners and caches never cross files.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { newWebhookSecret } from "@kiln-build/protocol";
import { pushRootfsImage, testStorage } from "../../runner/test/helpers/base-images.ts";
import { KilnClient } from "../../sdk/src/client.ts";
import { ADMIN_TOKEN, freePort, type Stack } from "./registry-harness.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const RUNNER_CLI = path.join(ROOT, "runner/dist/cli.js");
const DAEMON = path.join(import.meta.dirname, "e2e-stack-daemon.ts");
/** Every scope, so one token drives the whole SDK and CLI surface. */
export const ALL_SCOPES = [
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

/** The address of a running stack and its admin token. */
export type StackInfo = { url: string; host: string; adminToken: string };

/** A workspace with an all-scopes token and an SDK client for it. */
export type Tenant = { workspace: string; token: string; client: KilnClient };

/** A reference runner process registered as a fleet of a tenant. */
export type LocalRunner = {
  url: string;
  fleetId: string;
  dir: string;
  /** The runner's process group leader. */
  process: ChildProcess;
  /** Output so far (JSON log lines), for failure messages. */
  log(): string;
  /** SIGKILLs the runner and every build it started (a machine that died). */
  kill(): Promise<void>;
  /** SIGTERM, then waits; removes its storage. */
  stop(): Promise<void>;
};

/**
 * The stack shared by this vitest run, started on first use. Returns once `/healthz` answers.
 * Outside vitest (benchmarks), use `startStack()` from registry-harness.ts directly.
 */
export async function sharedStack(): Promise<StackInfo> {
  // Test files run in forked workers (vitest's default pool): the run's owner is the parent.
  const owner = typeof process.send === "function" ? process.ppid : process.pid;
  const dir = path.join(os.tmpdir(), `kiln-e2e-stack-${owner}`);
  const state = path.join(dir, "state.json");
  mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, "lock");
  let starter = false;
  try {
    mkdirSync(lock);
    starter = true;
  } catch {
    // Another file is starting it (or did): wait for its state file below.
  }
  if (starter) {
    const daemon = spawn(process.execPath, [DAEMON, dir, String(owner)], { cwd: ROOT, detached: true, stdio: "ignore" });
    daemon.unref();
  }
  for (let i = 0; i < 1200; i++) {
    if (existsSync(state)) {
      const info = JSON.parse(readFileSync(state, "utf8")) as StackInfo | { error: string };
      if ("error" in info) throw new Error(`The shared e2e stack did not start:\n${info.error}`);
      if (
        await fetch(`${info.url}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return info;
    }
    await sleep(250);
  }
  throw new Error(`The shared e2e stack did not start within 5 minutes (state in ${dir}).`);
}

/** Writes the daemon's state file atomically. */
export function writeStackState(dir: string, value: StackInfo | { error: string }): void {
  writeFileSync(path.join(dir, "state.json.tmp"), JSON.stringify(value));
  spawnSync("mv", [path.join(dir, "state.json.tmp"), path.join(dir, "state.json")]);
}

/** The address part of a started Stack. */
export function stackInfo(stack: Stack): StackInfo {
  return { url: stack.url, host: stack.host, adminToken: ADMIN_TOKEN };
}

/** Creates a workspace (unique name from `prefix`) and an all-scopes API token. */
export async function newWorkspace(stack: StackInfo, prefix: string): Promise<Tenant> {
  const workspace = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  const admin = { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" };
  const ws = await fetch(`${stack.url}/v1/workspaces`, { method: "POST", headers: admin, body: JSON.stringify({ name: workspace }) });
  if (ws.status !== 201) throw new Error(`create workspace: ${ws.status} ${await ws.text()}`);
  const tok = await fetch(`${stack.url}/v1/tokens`, {
    method: "POST",
    headers: { ...admin, "x-kiln-workspace": workspace },
    body: JSON.stringify({ name: "e2e", scopes: ALL_SCOPES }),
  });
  if (tok.status !== 201) throw new Error(`create token: ${tok.status} ${await tok.text()}`);
  const token = ((await tok.json()) as { token: string }).token;
  return { workspace, token, client: new KilnClient({ serverUrl: stack.url, token }) };
}

/** Options of {@link startLocalRunner}. */
export type LocalRunnerOptions = {
  name?: string;
  concurrency?: number;
  logLevel?: string;
  /** The runner command (default: the repository's built `runner/dist/cli.js` on this Node); e.g. an installed `kiln-runner`. */
  command?: string[];
  /** Extra environment for the runner process. */
  env?: Record<string, string>;
  /** Mark the fleet as trusted with secret values (default true: it is the test's own runner). */
  trustedWithSecrets?: boolean;
  /** The platforms the fleet declares (default: the server's, linux/amd64 natively). */
  platforms?: { native: string[]; emulated: string[] };
};

/**
 * Starts `kiln-runner serve` on a free loopback port with its own work, cache and buildah
 * storage directories, and registers it as a fleet of `tenant` with a fresh signing secret.
 */
export async function startLocalRunner(stack: StackInfo, tenant: Tenant, options: LocalRunnerOptions = {}): Promise<LocalRunner> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-e2e-runner-"));
  // The runner makes per-job directories inside these but expects the parents to exist.
  for (const sub of ["work", "cache"]) mkdirSync(path.join(dir, sub), { mode: 0o700 });
  // Secret files belong on RAM (the runner warns otherwise): /dev/shm where the machine has it.
  const secretsDir = await mkdtemp(path.join(existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "kiln-e2e-secrets-"));
  const secret = newWebhookSecret();
  const port = await freePort();
  const [program, ...programArgs] = options.command ?? [process.execPath, RUNNER_CLI];
  const child = spawn(
    program!,
    [
      ...programArgs,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--concurrency",
      String(options.concurrency ?? 1),
      "--work-dir",
      path.join(dir, "work"),
      "--cache-dir",
      path.join(dir, "cache"),
      "--secrets-dir",
      secretsDir,
      "--storage-root",
      path.join(dir, "storage"),
      "--storage-run-root",
      path.join(dir, "run"),
      "--log-level",
      options.logLevel ?? "info",
    ],
    {
      cwd: ROOT,
      env: { ...process.env, ...options.env, KILN_RUNNER_WEBHOOK_SECRET: secret },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-50_000);
    if (process.env.KILN_VERBOSE) process.stderr.write(d);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  const signal = async (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // Already gone.
    }
  };
  const exited = () =>
    new Promise<void>((resolve) =>
      child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve()),
    );
  const cleanup = () => {
    // The runner keeps one buildah storage per workspace under the root (and its containers on
    // RAM in the secrets directory); its files are root-owned, so removing the trees is enough here.
    rmSync(dir, { recursive: true, force: true });
    rmSync(secretsDir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`kiln-runner exited with ${child.exitCode}:\n${output}`);
    if (
      await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 240) {
      await signal("SIGKILL");
      throw new Error(`kiln-runner did not answer on ${url}:\n${output}`);
    }
    await sleep(250);
  }
  const fleet = await tenant.client.json<{ id: string }>("POST", ["v1", "fleets"], {
    json: {
      name: options.name ?? `runner-${port}`,
      url: `${url}/v1/jobs`,
      gpuTypes: [],
      maxConcurrentBuilds: options.concurrency ?? 1,
      signingSecret: secret,
      ...(options.platforms ? { platforms: options.platforms } : {}),
    },
  });
  // The test's own runner may receive secret values: only an admin (`fleets:admin`) can say so.
  if (options.trustedWithSecrets !== false) {
    const trusted = await fetch(`${stack.url}/v1/fleets/${fleet.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${stack.adminToken}`, "x-kiln-workspace": tenant.workspace, "content-type": "application/json" },
      body: JSON.stringify({ trustedWithSecrets: true }),
    });
    if (!trusted.ok) throw new Error(`trust fleet: ${trusted.status} ${await trusted.text()}`);
  }
  return {
    url,
    fleetId: fleet.id,
    dir,
    process: child,
    log: () => output,
    async kill() {
      // Builds run in process groups of their own: take every descendant down with the runner.
      const pids = descendantPids(child.pid!);
      await signal("SIGKILL");
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await exited();
    },
    async stop() {
      await signal("SIGTERM");
      const done = await Promise.race([exited().then(() => true), sleep(20_000).then(() => false)]);
      if (!done) await signal("SIGKILL");
      await exited();
      cleanup();
    },
  };
}

/**
 * Pushes a root filesystem (runner/test/helpers/base-images.ts: busybox or debootstrap) to
 * the built-in registry as `<workspace>/<repository>`, the base image builds start from.
 */
export async function pushBaseImage(stack: StackInfo, tenant: Tenant, rootfs: string, repository: string): Promise<string> {
  const reference = `${stack.host}/${tenant.workspace}/${repository}`;
  const storage = await testStorage();
  try {
    await pushRootfsImage(rootfs, reference, storage, `e2e:${tenant.token}`);
  } finally {
    spawnSync("buildah", ["--root", storage.root, "--runroot", storage.runRoot, "--storage-driver", "vfs", "rmi", "--all", "--force"], {
      stdio: "ignore",
    });
    await storage.dispose();
  }
  return reference;
}

/** Disables a fleet so the orchestrator stops dispatching to it. */
export async function disableFleet(tenant: Tenant, fleetId: string): Promise<void> {
  await tenant.client.json("PATCH", ["v1", "fleets", fleetId], { json: { disabled: true } });
}

/** A private buildah storage for pulling and inspecting built images. */
export type Buildah = { run(...args: string[]): Promise<string>; dispose(): void };

/** buildah with its own vfs storage under a temp directory. */
export async function privateBuildah(): Promise<Buildah> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-e2e-buildah-"));
  const global = ["--root", path.join(dir, "root"), "--runroot", path.join(dir, "run"), "--storage-driver", "vfs"];
  return {
    run: (...args) =>
      new Promise((resolve, reject) => {
        const child = spawn("buildah", [...global, ...args], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        child.on("error", reject);
        child.on("close", (code) =>
          code === 0 ? resolve(out) : reject(new Error(`buildah ${args.join(" ")} exited ${code}:\n${err}\n${out}`)),
        );
      }),
    dispose() {
      spawnSync("buildah", [...global, "rm", "--all"], { stdio: "ignore" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fails with the apt-get line when a tool the e2e tests need is missing (CI installs them). */
export function requireE2eTools(...tools: string[]): void {
  const apt: Record<string, string> = { busybox: "busybox-static" };
  const missing = tools.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
  if (missing.length) {
    throw new Error(
      `The end-to-end tests need ${missing.join(", ")}. Install with: apt-get install -y --no-install-recommends ${missing.map((t) => apt[t] ?? t).join(" ")}`,
    );
  }
}

/** Every live descendant of `root` (from /proc), children first. */
export function descendantPids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name (which may contain spaces): state, ppid, ...
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process exited while we looked.
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length) {
    for (const pid of children.get(queue.shift()!) ?? []) {
      found.push(pid);
      queue.push(pid);
    }
  }
  return found;
}
