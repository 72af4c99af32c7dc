/**
 * `npm run deploy -- --env <staging|production>`: deploys Kiln to your Cloudflare account.
 *
 * 1. checks you are logged in (`wrangler whoami`);
 * 2. creates the D1 database if it does not exist yet (`wrangler d1 create`), so migrations can
 *    run before the new code serves; the R2 buckets are created by `wrangler deploy` itself
 *    (automatic provisioning: bindings without ids, wrangler >= 4.45);
 * 3. applies the D1 migrations remotely (`wrangler d1 migrations apply DB --remote`);
 * 4. deploys the Worker (`wrangler deploy --env ...`, non-interactive, so no file is rewritten);
 * 5. checks the Worker secrets and prints the exact `wrangler secret put` commands for missing
 *    ones (or sets them with --generate-secrets), then the `kiln doctor` command to run.
 *
 * Every failure says what happened and how to fix it. docs/deploy.md walks through it.
 * `KILN_WRANGLER` overrides the wrangler executable (test/node/deploy.test.ts uses a fake).
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  type DeployEnvironment,
  deployedUrl,
  deployResources,
  parseDeployArgs,
  REQUIRED_SECRETS,
  secretPutCommand,
  USAGE,
} from "./deploy-plan.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const WRANGLER = process.env.KILN_WRANGLER ?? "wrangler";
// Never prompt: prompts would hang in CI, and wrangler only rewrites config files when interactive.
const ENV = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: process.env.WRANGLER_SEND_METRICS ?? "false" };

function step(message: string): void {
  process.stdout.write(`kiln deploy: ${message}\n`);
}

/** Prints the three-part failure and exits 1. */
function fail(what: string, details: string, fix: string): never {
  process.stderr.write(`\nError: ${what}\n`);
  if (details.trim())
    process.stderr.write(
      `\n${details
        .trim()
        .split("\n")
        .slice(-15)
        .map((l) => `  ${l}`)
        .join("\n")}\n`,
    );
  process.stderr.write(`\nHow to fix: ${fix}\n`);
  process.exit(1);
}

/** Runs wrangler, capturing its output (for commands whose output we parse). */
function wrangler(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(WRANGLER, args, { cwd: ROOT, env: ENV, encoding: "utf8", input: input ?? "", shell: false });
  if (result.error)
    fail(
      `Could not run ${WRANGLER}.`,
      String(result.error),
      "Run `npm ci` first (wrangler is a dev dependency), and run this through `npm run deploy`.",
    );
  return { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

/** Runs wrangler with its output streamed to the terminal (long steps), also returning it. */
function wranglerLive(args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(WRANGLER, args, { cwd: ROOT, env: ENV, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (target: NodeJS.WriteStream) => (d: Buffer) => {
      output += d.toString();
      target.write(d);
    };
    child.stdout.on("data", keep(process.stdout));
    child.stderr.on("data", keep(process.stderr));
    child.on("error", (error) =>
      fail(`Could not run ${WRANGLER}.`, String(error), "Run `npm ci` first, then `npm run deploy -- --env <env>`."),
    );
    child.on("close", (status) => resolve({ status: status ?? 1, output }));
  });
}

const args = parseDeployArgs(process.argv.slice(2));
if ("error" in args) {
  process.stderr.write(`${args.error}\n\n${USAGE}\n`);
  process.exit(2);
}
const env: DeployEnvironment = args.env;
const resources = deployResources(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"), env);
step(`environment ${env}: Worker ${resources.worker}, D1 database ${resources.database}, R2 buckets ${resources.buckets.join(", ")}`);

if (args.dryRun) {
  step("dry run: bundling the Worker, nothing in your account is touched");
  const dry = await wranglerLive(["deploy", "--dry-run", "--env", env]);
  if (dry.status !== 0) fail("The Worker does not bundle.", dry.output, "Fix the build error above; `npm test` runs the same dry run.");
  step(`dry run complete. Deploy for real: npm run deploy -- --env ${env}`);
  process.exit(0);
}

// 1. Logged in?
const who = wrangler(["whoami", "--json"]);
if (who.status !== 0) {
  fail(
    "You are not logged in to Cloudflare.",
    who.stderr || who.stdout,
    "Run `npx wrangler login` (a browser opens), or in CI set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID. Then run this again.",
  );
}
let accounts: { name: string; id: string }[] = [];
try {
  accounts = (JSON.parse(who.stdout) as { accounts?: { name: string; id: string }[] }).accounts ?? [];
} catch {
  // Older output formats: the login itself is what matters.
}
if (accounts.length > 1 && !process.env.CLOUDFLARE_ACCOUNT_ID) {
  fail(
    `Your login has ${accounts.length} Cloudflare accounts and this command cannot ask which one.`,
    accounts.map((a) => `${a.id}  ${a.name}`).join("\n"),
    "Choose one: `export CLOUDFLARE_ACCOUNT_ID=<id from the list>`, then run this again.",
  );
}
step(`logged in${accounts.length === 1 ? ` (account ${accounts[0]!.name})` : ""}`);

// 2. D1: create the database before migrating it; wrangler deploy would only create it after the code is live.
const listed = wrangler(["d1", "list", "--json"]);
if (listed.status !== 0)
  fail(
    "Could not list your D1 databases.",
    listed.stderr || listed.stdout,
    "Check that your API token has the D1 Edit permission (or run `npx wrangler login` again).",
  );
let databases: { name: string }[] = [];
try {
  databases = JSON.parse(listed.stdout) as { name: string }[];
} catch {
  fail("Could not read `wrangler d1 list --json`.", listed.stdout, "Update wrangler (`npm ci`) and run this again.");
}
if (databases.some((db) => db.name === resources.database)) {
  step(`D1 database ${resources.database} exists`);
} else {
  step(`creating D1 database ${resources.database}`);
  const created = wrangler(["d1", "create", resources.database]);
  if (created.status !== 0)
    fail(
      `Could not create the D1 database ${resources.database}.`,
      created.stderr || created.stdout,
      `Create it yourself: npx wrangler d1 create ${resources.database}, then run this again.`,
    );
}

// R2 must be enabled once per account (a dashboard step) before any bucket can be created.
const buckets = wrangler(["r2", "bucket", "list"]);
if (buckets.status !== 0) {
  fail(
    "R2 is not available on this account.",
    buckets.stderr || buckets.stdout,
    "Enable R2 once in the Cloudflare dashboard (Storage & databases > R2 > enable/purchase; there is a free tier), then run this again.",
  );
}
const missingBuckets = resources.buckets.filter((name) => !buckets.stdout.includes(name));
step(missingBuckets.length ? `R2 buckets to be created by wrangler deploy: ${missingBuckets.join(", ")}` : "R2 buckets exist");

// 3. Migrations first: the new code may need the new schema; migrations only add.
step("applying D1 migrations (remote)");
const migrated = await wranglerLive(["d1", "migrations", "apply", resources.bindingOfDatabase, "--remote", "--env", env]);
if (migrated.status !== 0)
  fail(
    "The D1 migrations did not apply.",
    migrated.output,
    `Read the error above, then retry: npx wrangler d1 migrations apply ${resources.bindingOfDatabase} --remote --env ${env}`,
  );

// 4. Deploy (provisions missing R2 buckets, links the D1 database by name).
step(`deploying the Worker ${resources.worker}`);
const deployed = await wranglerLive(["deploy", "--env", env]);
if (deployed.status !== 0) {
  const subdomain = /workers\.dev subdomain/i.test(deployed.output);
  fail(
    "wrangler deploy failed.",
    deployed.output,
    subdomain
      ? "Register your workers.dev subdomain once: open the Cloudflare dashboard > Workers & Pages, accept the subdomain, then run this again."
      : `Read the error above; \`npm run deploy -- --env ${env} --dry-run\` checks the bundle offline.`,
  );
}
const url = deployedUrl(deployed.output);

// 5. Secrets.
const secretList = wrangler(["secret", "list", "--env", env, "--format", "json"]);
let present: string[] = [];
try {
  present = (JSON.parse(secretList.stdout) as { name: string }[]).map((s) => s.name);
} catch {
  // Unreadable list: every secret is reported as possibly missing below.
}
const missing = REQUIRED_SECRETS.filter((s) => !present.includes(s.name));
let adminToken: string | null = null;
if (missing.length > 0 && args.generateSecrets) {
  for (const secret of missing) {
    const value =
      secret.name === "KILN_SECRET_KEY" ? randomBytes(32).toString("base64") : `kiln_bootstrap_${randomBytes(32).toString("base64url")}`;
    const put = wrangler(["secret", "put", secret.name, "--env", env], value);
    if (put.status !== 0)
      fail(`Could not set ${secret.name}.`, put.stderr || put.stdout, `Set it yourself: ${secretPutCommand(secret.name, env)}`);
    if (secret.name === "KILN_ADMIN_TOKEN") adminToken = value;
    step(`set ${secret.name} (${secret.why})`);
  }
} else if (missing.length > 0) {
  step("the Worker is deployed, but it lacks secrets. Set them (values never leave your machine except to Cloudflare):");
  for (const secret of missing) process.stdout.write(`\n  # ${secret.name}: ${secret.why}\n  ${secretPutCommand(secret.name, env)}\n`);
  process.stdout.write(
    "\n  Keep the admin token value: it is how you create workspaces, tokens and fleets. Or rerun with --generate-secrets.\n\n",
  );
} else {
  step("secrets KILN_SECRET_KEY and KILN_ADMIN_TOKEN are set");
}

const server = url ?? `https://${resources.worker}.<your-subdomain>.workers.dev`;
process.stdout.write(
  [
    "",
    `  Kiln (${env}) is deployed${url ? ` at ${url}` : ""}.`,
    ...(adminToken ? ["", `  Admin token (shown once, store it now): ${adminToken}`] : []),
    "",
    "  Check it:",
    `    KILN_SERVER_URL=${server} KILN_TOKEN=<admin token> npx kiln doctor`,
    "",
    "  Next: a workspace, a token and a runner fleet: docs/deploy.md#first-build",
    "",
  ].join("\n"),
);
