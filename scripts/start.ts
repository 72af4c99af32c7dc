/**
 * `npm start`: Kiln's whole local stack from one command on a fresh clone.
 *
 * - the orchestrator on `wrangler dev` with local D1, R2 and Durable Objects (state under
 *   `.wrangler/state`), D1 migrations applied first, Worker secrets generated once into the
 *   git-ignored `.wrangler/kiln-dev/secrets.env`;
 * - the built-in OCI registry (the same Worker, under `/v2/`);
 * - a development workspace with a token, both reused across restarts;
 * - a reference runner (`kiln-runner serve`) as a child process, registered as the workspace's
 *   fleet with a signing secret, restarted when it exits (1 s, doubling to 30 s; back to 1 s
 *   after a minute up); without buildah it says how to install it and goes on;
 * - a busybox base image in the registry and a `welcome` image behind a public badge tag.
 *
 * It prints what runs, the token and the next command; Ctrl-C stops everything it started.
 * Settings: KILN_PORT (8787), KILN_RUNNER_PORT (8788), KILN_WORKSPACE (dev), KILN_STATE_DIR
 * (.wrangler), KILN_VERBOSE=1 to show wrangler's and the runner's own output.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { KilnClient } from "../sdk/src/client.ts";
import { Image } from "../sdk/src/image.ts";
import {
  api,
  type Child,
  choosePort,
  type DevState,
  ensureBusyboxBase,
  ensureFleet,
  ensureWorkspaceAndToken,
  hasCommand,
  loadState,
  localWorkerSecrets,
  saveState,
  signingSecret,
  stackPaths,
  startChild,
  staticBusybox,
  superviseChild,
  waitHealthy,
} from "./local-stack.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const RUNNER = path.join(ROOT, "runner/dist/cli.js");
const verbose = !!process.env.KILN_VERBOSE;
const paths = stackPaths(path.resolve(ROOT, process.env.KILN_STATE_DIR ?? ".wrangler"));
const workspace = process.env.KILN_WORKSPACE ?? "dev";
// Node 22 (the pinned one running this script) for wrangler and the runner, whatever PATH says.
const env = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ""}`, WRANGLER_SEND_METRICS: "false" };

const children: Child[] = [];
let stopping = false;

function say(message: string): void {
  process.stdout.write(`kiln: ${message}\n`);
}

/** What happened / details / how to fix, then stop what was started. */
async function fail(what: string, details: string, fix: string): Promise<never> {
  process.stderr.write(`\nkiln: ${what}\n${details ? `\n${details.trim().replace(/^/gm, "  ")}\n` : ""}\nHow to fix: ${fix}\n`);
  await stopAll(1);
  throw new Error("unreachable");
}

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    // The runner first: it reports its running builds as interrupted while the orchestrator still listens.
    for (const child of [...children].reverse()) await child.stop();
    say("stopped everything it started.");
  }
  process.exit(code);
}

process.on("SIGINT", () => {
  process.stdout.write("\n");
  say("Ctrl-C: stopping...");
  void stopAll(0);
});
process.on("SIGTERM", () => void stopAll(0));

// ---- orchestrator -------------------------------------------------------------------------

const { adminToken } = localWorkerSecrets(paths);
const port = Number(process.env.KILN_PORT ?? 8787);
const url = `http://127.0.0.1:${port}`;
const host = `127.0.0.1:${port}`;
/** A path as the user would type it: relative under the working directory, else absolute. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith("..") ? rel : p;
}

say(`applying D1 migrations to the local database (${shown(paths.persist)})`);
const migrate = spawnSync(process.execPath, [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--persist-to", paths.persist], {
  cwd: ROOT,
  env: { ...env, CI: "true" }, // never prompt: local migrations are safe to apply
  encoding: "utf8",
});
if (migrate.status !== 0)
  await fail(
    "Could not apply the D1 migrations.",
    `${migrate.stdout}\n${migrate.stderr}`.slice(-3000),
    "Run `npm ci`, then `npm start` again.",
  );

say(`starting the orchestrator on ${url} (wrangler dev)`);
const worker = startChild(
  "orchestrator",
  process.execPath,
  [
    WRANGLER,
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--persist-to",
    paths.persist,
    "--env-file",
    paths.secretsEnv,
    // Local development: webhooks may go to receivers on this machine (docs/security.md).
    "--var",
    "WEBHOOKS_ALLOW_PRIVATE:true",
    "--show-interactive-dev-session=false",
    ...(verbose ? [] : ["--log-level", "warn"]),
  ],
  { cwd: ROOT, env, echo: verbose },
);
children.push(worker);
if (!(await waitHealthy(`${url}/healthz`, worker.process, 180_000))) {
  await fail(
    `The orchestrator did not come up on ${url}.`,
    worker.output().slice(-3000),
    `Is port ${port} in use (another npm start)? Stop it or set KILN_PORT=<port>.`,
  );
}
worker.process.on("exit", () => {
  if (!stopping) {
    process.stderr.write(`kiln: the orchestrator exited unexpectedly:\n${worker.output().slice(-2000)}\n`);
    void stopAll(1);
  }
});

// ---- workspace and token --------------------------------------------------------------------

const state: DevState = loadState(paths, workspace);
try {
  state.token = await ensureWorkspaceAndToken(url, adminToken, state);
} catch (error) {
  await fail(
    "Could not set up the development workspace.",
    String((error as Error).message),
    "Delete .wrangler/kiln-dev/state.json and start again.",
  );
}
saveState(paths, state);
const token = state.token!;

// ---- runner, base image, badge tag ----------------------------------------------------------

type RunnerInfo = { url: string; fleetId: string } | { skipped: string };
let runner: RunnerInfo;
let welcome: string | null = null;
let base: string | null = null;
if (!hasCommand("buildah")) {
  runner = {
    skipped:
      "buildah is not installed. Builds wait until a runner is registered.\n                How to fix: sudo apt-get install -y buildah   (Debian/Ubuntu), then npm start again.",
  };
} else {
  runner = await startRunner();
  if ("url" in runner) {
    [base, welcome] = await seedImages();
  }
}

async function startRunner(): Promise<RunnerInfo> {
  if (process.getuid?.() !== 0)
    say("warning: the runner builds with buildah's chroot isolation, which needs root; builds may fail otherwise.");
  const runnerPort = await choosePort(Number(process.env.KILN_RUNNER_PORT ?? port + 1));
  const runnerUrl = `http://127.0.0.1:${runnerPort}`;
  const secret = signingSecret(state);
  for (const dir of ["work", "cache"]) mkdirSync(path.join(paths.runner, dir), { recursive: true, mode: 0o700 });
  say(`starting the runner on ${runnerUrl} (kiln-runner serve, buildah)`);
  // Secrets (and the storage run root) stay in the runner's default RAM directory under /dev/shm.
  const spawnRunner = () =>
    startChild(
      "runner",
      process.execPath,
      [
        ...[RUNNER, "serve", "--host", "127.0.0.1", "--port", String(runnerPort), "--concurrency", "2"],
        ...["--work-dir", path.join(paths.runner, "work"), "--cache-dir", path.join(paths.runner, "cache")],
        ...["--storage-root", path.join(paths.runner, "storage"), "--log-level", verbose ? "info" : "warn"],
      ],
      // The secret goes through the environment, never argv (visible in ps).
      { cwd: ROOT, env: { ...env, KILN_RUNNER_WEBHOOK_SECRET: secret }, echo: verbose },
    );
  const child = spawnRunner();
  children.push(child);
  if (!(await waitHealthy(`${runnerUrl}/healthz`, child.process, 60_000))) {
    return {
      skipped: `the runner did not start:\n${child.output().slice(-2000).replace(/^/gm, "    ")}\n  Fix the problem above and run npm start again; the orchestrator runs without it.`,
    };
  }
  // Same port and secret: the registered fleet reaches the restarted runner, which cleans up after the exited one.
  superviseChild(child, {
    start: spawnRunner,
    onStart: (next) => {
      children[children.findIndex((c) => c.name === "runner")] = next;
    },
    stopping: () => stopping,
    say,
  });
  state.signingSecret = secret;
  state.fleetId = await ensureFleet(url, token, state, runnerUrl, secret, { token: adminToken, workspace });
  saveState(paths, state);
  return { url: runnerUrl, fleetId: state.fleetId };
}

/** The offline base image and the `welcome` image behind a public tag (a first build through the runner). */
async function seedImages(): Promise<[string | null, string | null]> {
  if (!staticBusybox()) {
    say("no static busybox (apt-get install busybox-static): skipping the offline base image and the welcome badge.");
    return [null, null];
  }
  const reference = `${host}/${workspace}/base:busybox`;
  try {
    mkdirSync(path.join(paths.dev, "seed"), { recursive: true });
    if (await ensureBusyboxBase(url, reference, token, path.join(paths.dev, "seed")))
      say(`pushed the base image ${reference} to the built-in registry`);
    say("building the welcome image through the runner (a cache hit after the first start)");
    const built = await Image.fromRegistry(reference)
      .runCommands("echo 'Hello from Kiln' > /etc/motd")
      .build({ client: new KilnClient({ serverUrl: url, token }), tag: "welcome", logs: verbose });
    const tagged = await api(url, token, "PUT", "/v1/tags/welcome", { imageId: built.imageId, public: true });
    if (tagged.status !== 200) throw new Error(`tagging failed: HTTP ${tagged.status} ${JSON.stringify(tagged.json)}`);
    return [reference, "welcome"];
  } catch (error) {
    say(
      `could not build the welcome image (the stack keeps running): ${String((error as Error).message)
        .split("\n")
        .slice(0, 6)
        .join("\n  ")}`,
    );
    return [reference, null];
  }
}

// ---- summary -------------------------------------------------------------------------------

const serverEnv = port === 8787 ? "" : `export KILN_SERVER_URL=${url}\n    `;
const lines = [
  "",
  "Kiln is running:",
  `  orchestrator  ${url}   (wrangler dev; D1, R2 and Durable Objects in ${shown(paths.persist)})`,
  `  registry      ${host}/${workspace}/...   (built-in OCI registry at ${url}/v2/; password: the token)`,
  "url" in runner
    ? `  runner        ${runner.url}   (fleet ${runner.fleetId}; buildah storage in ${shown(paths.runner)})`
    : `  runner        not started: ${runner.skipped}`,
  `  workspace     ${workspace}`,
  `  token         ${token}`,
  ...(welcome
    ? [
        `  status page   ${url}/images/by-tag/${workspace}/${welcome}`,
        `  badge         [![kiln: ${welcome}](${url}/badges/${workspace}/${welcome}.svg)](${url}/images/by-tag/${workspace}/${welcome})`,
      ]
    : []),
  "",
  "Next, in another terminal:",
  `    ${serverEnv}export KILN_TOKEN=${token}`,
  ...(base ? ["    npx kiln build examples/local-base.ts      # offline: builds on the busybox base in the built-in registry"] : []),
  "    npx kiln build examples/quickstart.ts      # Debian + Python: pulls python:3.12-slim-bookworm and PyPI packages",
  "    npx kiln images ls",
  "",
  "Ctrl-C stops everything this command started.",
  "",
];
process.stdout.write(lines.join("\n"));
