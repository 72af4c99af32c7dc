// `npm run deploy` offline: scripts/deploy.ts driven against a fake `wrangler` (KILN_WRANGLER)
// that records every call and plays an account. Proves the order (database before migrations,
// migrations before code), that nothing is asked interactively, and the "what / how to fix"
// answers; the real bundle is proven by bundle.test.ts.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deployedUrl, deployResources, parseDeployArgs, secretPutCommand } from "../../scripts/deploy-plan.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-deploy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The fake: appends its argv (and, for `secret put`, what it received on stdin) to FAKE_LOG.
const FAKE = path.join(dir, "wrangler");
writeFileSync(
  FAKE,
  `#!${process.execPath}
const fs = require("node:fs");
const state = JSON.parse(process.env.FAKE_STATE);
const args = process.argv.slice(2);
const cmd = args.filter((a) => !a.startsWith("-")).slice(0, 3).join(" ");
const record = (extra) => fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify({ args, ci: process.env.CI, ...extra }) + "\\n");
const out = (text, code = 0) => { process.stdout.write(text); process.exit(code); };
if (cmd === "secret put " + args[2]) {
  let input = "";
  process.stdin.on("data", (d) => (input += d));
  process.stdin.on("end", () => { record({ stdinLength: input.length, stdinBase64Bytes: Buffer.from(input, "base64").length }); out("ok"); });
} else {
  record({});
  if (args[0] === "whoami") state.loggedIn ? out(JSON.stringify({ loggedIn: true, accounts: [{ name: "Acme", id: "acc1" }] })) : out("", 1);
  else if (cmd === "d1 list") out(JSON.stringify(state.databases.map((name) => ({ name, uuid: "u-" + name }))));
  else if (cmd.startsWith("d1 create")) out("Successfully created DB");
  else if (cmd === "r2 bucket list") out(state.buckets.map((b) => "name: " + b).join("\\n"));
  else if (cmd.startsWith("d1 migrations apply")) state.migrationsFail ? out("migration 0001 failed", 1) : out("applied");
  else if (args[0] === "deploy") out("Uploaded kiln-staging\\nDeployed kiln-staging triggers\\n  https://kiln-staging.acme.workers.dev\\n");
  else if (cmd.startsWith("secret list")) out(JSON.stringify(state.secrets.map((name) => ({ name, type: "secret_text" }))));
  else out("unexpected command " + args.join(" "), 3);
}
`,
);
chmodSync(FAKE, 0o755);

type State = { loggedIn: boolean; databases: string[]; buckets: string[]; secrets: string[]; migrationsFail?: boolean };
const ACCOUNT: State = { loggedIn: true, databases: [], buckets: [], secrets: [] };

function deploy(argv: string[], state: State) {
  const log = path.join(dir, `log-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(log, "");
  const result = spawnSync(process.execPath, [path.join(ROOT, "scripts/deploy.ts"), ...argv], {
    cwd: ROOT,
    env: { ...process.env, KILN_WRANGLER: FAKE, FAKE_LOG: log, FAKE_STATE: JSON.stringify(state), CLOUDFLARE_ACCOUNT_ID: "" },
    encoding: "utf8",
  });
  const calls = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { args: string[]; ci: string; stdinLength?: number; stdinBase64Bytes?: number });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls, commands: calls.map((c) => c.args.join(" ")) };
}

describe("deploy plan", () => {
  it("reads what each environment deploys from wrangler.toml", () => {
    const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
    expect(deployResources(toml, "staging")).toEqual({
      worker: "kiln-staging",
      database: "kiln-staging",
      bindingOfDatabase: "DB",
      buckets: ["kiln-staging-contexts", "kiln-staging-logs", "kiln-staging-registry"],
    });
    expect(deployResources(toml, "production").database).toBe("kiln-production");
  });

  it("parses arguments and refuses unknown environments", () => {
    expect(parseDeployArgs(["--env", "staging"])).toEqual({ env: "staging", dryRun: false, generateSecrets: false });
    expect(parseDeployArgs(["--env=production", "--dry-run", "--generate-secrets"])).toEqual({
      env: "production",
      dryRun: true,
      generateSecrets: true,
    });
    expect(parseDeployArgs([])).toHaveProperty("error");
    expect(parseDeployArgs(["--env", "prod"])).toHaveProperty("error");
    expect(secretPutCommand("KILN_SECRET_KEY", "staging")).toBe(
      "openssl rand -base64 32 | npx wrangler secret put KILN_SECRET_KEY --env staging",
    );
    expect(deployedUrl("x\n  https://kiln-staging.acme.workers.dev\n")).toBe("https://kiln-staging.acme.workers.dev");
  });
});

describe("npm run deploy (fake wrangler)", () => {
  it("on an empty account: creates the database, migrates, deploys, then prints the secret commands", () => {
    const run = deploy(["--env", "staging"], ACCOUNT);
    expect(run.status, run.stderr).toBe(0);
    expect(run.commands).toEqual([
      "whoami --json",
      "d1 list --json",
      "d1 create kiln-staging",
      "r2 bucket list",
      "d1 migrations apply DB --remote --env staging",
      "deploy --env staging",
      "secret list --env staging --format json",
    ]);
    expect(run.calls.every((c) => c.ci === "true")).toBe(true);
    expect(run.stdout).toContain(
      "R2 buckets to be created by wrangler deploy: kiln-staging-contexts, kiln-staging-logs, kiln-staging-registry",
    );
    expect(run.stdout).toContain("openssl rand -base64 32 | npx wrangler secret put KILN_SECRET_KEY --env staging");
    expect(run.stdout).toContain("npx wrangler secret put KILN_ADMIN_TOKEN --env staging");
    expect(run.stdout).toContain("KILN_SERVER_URL=https://kiln-staging.acme.workers.dev KILN_TOKEN=<admin token> npx kiln doctor");
  });

  it("on a deployed account: creates nothing and reports the secrets set", () => {
    const run = deploy(["--env", "staging"], {
      ...ACCOUNT,
      databases: ["kiln-staging"],
      buckets: ["kiln-staging-contexts", "kiln-staging-logs", "kiln-staging-registry"],
      secrets: ["KILN_SECRET_KEY", "KILN_ADMIN_TOKEN"],
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.commands.some((c) => c.startsWith("d1 create"))).toBe(false);
    expect(run.stdout).toContain("R2 buckets exist");
    expect(run.stdout).toContain("secrets KILN_SECRET_KEY and KILN_ADMIN_TOKEN are set");
  });

  it("sets missing secrets with --generate-secrets and shows the admin token once", () => {
    const run = deploy(["--env", "production", "--generate-secrets"], {
      ...ACCOUNT,
      databases: ["kiln-production"],
      secrets: ["KILN_ADMIN_TOKEN"],
    });
    expect(run.status, run.stderr).toBe(0);
    const puts = run.calls.filter((c) => c.args[0] === "secret" && c.args[1] === "put");
    expect(puts.map((c) => c.args.join(" "))).toEqual(["secret put KILN_SECRET_KEY --env production"]);
    expect(puts[0]!.stdinBase64Bytes).toBe(32);
    expect(run.stdout).not.toContain("Admin token (shown once");
  });

  it("stops before anything else when not logged in, saying how to log in", () => {
    const run = deploy(["--env", "staging"], { ...ACCOUNT, loggedIn: false });
    expect(run.status).toBe(1);
    expect(run.commands).toEqual(["whoami --json"]);
    expect(run.stderr).toContain("You are not logged in to Cloudflare.");
    expect(run.stderr).toContain("How to fix: Run `npx wrangler login`");
  });

  it("never deploys code when the migrations fail", () => {
    const run = deploy(["--env", "staging"], { ...ACCOUNT, databases: ["kiln-staging"], migrationsFail: true });
    expect(run.status).toBe(1);
    expect(run.commands.some((c) => c.startsWith("deploy"))).toBe(false);
    expect(run.stderr).toContain("npx wrangler d1 migrations apply DB --remote --env staging");
  });

  it("refuses a missing --env with the usage (exit 2)", () => {
    const run = deploy([], ACCOUNT);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("Usage: npm run deploy -- --env <staging|production>");
    expect(run.calls).toEqual([]);
  });
});
