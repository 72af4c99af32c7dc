/**
 * A reference runner (`kiln-runner serve`, the built runner/dist/cli.js) as a real child
 * process on directories the test owns, so a test can SIGKILL it, start it again on the same
 * state, search that state, and register one runner as a fleet of several workspaces with the
 * same signing secret (what a fleet shared by workspaces is to the runner).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { newWebhookSecret } from "@kiln-build/protocol";
import { descendantPids, type StackInfo, type Tenant } from "../node/e2e-stack.ts";
import { freePort } from "../node/registry-harness.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const RUNNER_CLI = path.join(ROOT, "runner/dist/cli.js");

/** The state a runner keeps: work, cache and storage on disk, secrets (and the default run root) in RAM. */
export type RunnerState = { work: string; cache: string; storage: string; secrets: string; dispose(): void };

/** Fresh state directories: disk ones under the temp dir, the secrets one under /dev/shm. */
export function runnerState(): RunnerState {
  const disk = mkdtempSync(path.join(os.tmpdir(), "kiln-sec-runner-"));
  const secrets = mkdtempSync(path.join(existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "kiln-sec-secrets-"));
  const state = { work: path.join(disk, "work"), cache: path.join(disk, "cache"), storage: path.join(disk, "storage"), secrets };
  for (const dir of [state.work, state.cache]) mkdirSync(dir, { mode: 0o700 });
  return {
    ...state,
    dispose() {
      // vfs layers are root-owned read-only trees; as root rm removes them.
      rmSync(disk, { recursive: true, force: true });
      rmSync(secrets, { recursive: true, force: true });
    },
  };
}

/** A running runner process. */
export type RunnerProcess = {
  url: string;
  secret: string;
  process: ChildProcess;
  /** Its output so far (JSON log lines). */
  log(): string;
  /** SIGKILL to the runner and every process it started (a machine losing it). */
  kill(): Promise<void>;
  /** SIGTERM, then waits. */
  stop(): Promise<void>;
};

/** Starts `kiln-runner serve` on `state` (on `port` and with `secret` when given: a restart). */
export async function spawnRunner(state: RunnerState, options: { secret?: string; port?: number } = {}): Promise<RunnerProcess> {
  const secret = options.secret ?? newWebhookSecret();
  const port = options.port ?? (await freePort());
  const args = [
    ...["serve", "--host", "127.0.0.1", "--port", String(port), "--log-level", "info"],
    ...["--work-dir", state.work, "--cache-dir", state.cache, "--secrets-dir", state.secrets, "--storage-root", state.storage],
  ];
  const child = spawn(process.execPath, [RUNNER_CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, KILN_RUNNER_WEBHOOK_SECRET: secret },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const keep = (d: Buffer) => {
    output += d.toString();
    if (process.env.KILN_VERBOSE) process.stderr.write(d);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
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
      signal("SIGKILL");
      throw new Error(`kiln-runner did not answer on ${url}:\n${output}`);
    }
    await sleep(250);
  }
  return {
    url,
    secret,
    process: child,
    log: () => output,
    async kill() {
      // Builds run in process groups of their own: take every descendant down with the runner.
      const pids = descendantPids(child.pid!);
      signal("SIGKILL");
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
      signal("SIGTERM");
      if (!(await Promise.race([exited().then(() => true), sleep(20_000).then(() => false)]))) signal("SIGKILL");
      await exited();
    },
  };
}

/**
 * Registers `runner` (its URL and signing secret) as a fleet of `tenant`; returns the fleet id.
 * With `trustWith`, the stack's admin also trusts the fleet with secret values.
 */
export async function registerFleet(tenant: Tenant, runner: RunnerProcess, name: string, trustWith?: StackInfo): Promise<string> {
  const fleet = await tenant.client.json<{ id: string }>("POST", ["v1", "fleets"], {
    json: { name, url: `${runner.url}/v1/jobs`, gpuTypes: [], maxConcurrentBuilds: 1, signingSecret: runner.secret },
  });
  if (trustWith) {
    const trusted = await fetch(`${trustWith.url}/v1/fleets/${fleet.id}`, {
      method: "PATCH",
      headers: {
        authorization: `Bearer ${trustWith.adminToken}`,
        "x-kiln-workspace": tenant.workspace,
        "content-type": "application/json",
      },
      body: JSON.stringify({ trustedWithSecrets: true }),
    });
    if (!trusted.ok) throw new Error(`trust fleet: ${trusted.status} ${await trusted.text()}`);
  }
  return fleet.id;
}

/** Files under `dirs` (not following links) whose bytes contain `needle`. */
export function filesContaining(needle: string, dirs: string[]): string[] {
  const existing = dirs.filter((d) => existsSync(d));
  if (existing.length === 0) return [];
  const result = spawnSync("grep", ["-rlF", "--no-messages", needle, ...existing], { encoding: "utf8" });
  return result.stdout.split("\n").filter(Boolean);
}
