/**
 * `npm start`: brings up Kiln's embedded local stack — the Worker on `wrangler dev` with
 * local D1, R2 and Durable Objects (state under .wrangler/), migrations applied first —
 * prints what is running and the next command, and stops everything on Ctrl-C.
 */
import { spawn, spawnSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

const port = Number(process.env.KILN_PORT ?? 8787);
const url = `http://127.0.0.1:${port}`;

function step(message: string): void {
  process.stdout.write(`kiln: ${message}\n`);
}

step("applying D1 migrations to the local database");
const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local"], {
  stdio: ["ignore", "inherit", "inherit"],
  env: { ...process.env, CI: "true" }, // never prompt: local migrations are safe to apply
});
if (migrate.status !== 0) {
  step("could not apply migrations (see the wrangler output above). Fix: run `npm ci`, then `npm start` again.");
  process.exit(1);
}

step(`starting the orchestrator on ${url} (wrangler dev)`);
const worker = spawn("wrangler", ["dev", "--ip", "127.0.0.1", "--port", String(port), "--show-interactive-dev-session=false"], {
  stdio: ["ignore", "pipe", "pipe"],
  env: process.env,
});
worker.stdout.on("data", (d: Buffer) => process.env.KILN_VERBOSE && process.stdout.write(d));
worker.stderr.on("data", (d: Buffer) => process.stderr.write(d));

const stop = () => {
  worker.kill("SIGTERM");
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
worker.on("exit", (code) => {
  step(`orchestrator stopped${code ? ` (exit code ${code})` : ""}`);
  process.exit(code ?? 0);
});

for (let attempt = 0; attempt < 120; attempt++) {
  const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
  if (ok) {
    step("ready.");
    process.stdout.write(
      [
        "",
        `  orchestrator  ${url}   (local D1, R2 and Durable Objects in .wrangler/state)`,
        "",
        "  Next: describe an image offline with the SDK:",
        "    npx node examples/quickstart.ts",
        "",
        "  Ctrl-C stops everything this command started.",
        "",
      ].join("\n"),
    );
    break;
  }
  await sleep(500);
}
