/**
 * The pure half of `npm run deploy` (scripts/deploy.ts): arguments, what an environment of
 * wrangler.toml deploys, and the exact commands shown to the user. No I/O.
 */
import { parse } from "smol-toml";

/** The environments wrangler.toml defines for deployment. */
export const DEPLOY_ENVIRONMENTS = ["staging", "production"] as const;
/** One of them. */
export type DeployEnvironment = (typeof DEPLOY_ENVIRONMENTS)[number];

/** Parsed command line of `npm run deploy`. */
export type DeployArgs = { env: DeployEnvironment; dryRun: boolean; generateSecrets: boolean };

/** The Worker secrets a deployment needs (`wrangler secret put`), with how to make a value. */
export const REQUIRED_SECRETS = [
  { name: "KILN_SECRET_KEY", why: "encrypts secrets and fleet signing secrets at rest", generate: "openssl rand -base64 32" },
  {
    name: "KILN_ADMIN_TOKEN",
    why: "the bootstrap admin token (create workspaces, tokens, fleets)",
    generate: "openssl rand -base64 36 | tr '+/' '-_'",
  },
] as const;

/** What one environment deploys, read from wrangler.toml. */
export type DeployResources = { worker: string; database: string; bindingOfDatabase: string; buckets: string[] };

/** Usage text. */
export const USAGE = [
  "Usage: npm run deploy -- --env <staging|production> [--dry-run] [--generate-secrets]",
  "",
  "  --env               which [env.*] of wrangler.toml to deploy",
  "  --dry-run           build the bundle and show the plan; touches nothing in your account",
  "  --generate-secrets  create KILN_SECRET_KEY and KILN_ADMIN_TOKEN if the Worker lacks them (the token is printed once)",
].join("\n");

/** Parses `argv` (after the script name); returns an error message for bad input. */
export function parseDeployArgs(argv: readonly string[]): DeployArgs | { error: string } {
  let env: string | undefined;
  let dryRun = false;
  let generateSecrets = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--dry-run") dryRun = true;
    else if (arg === "--generate-secrets") generateSecrets = true;
    else if (arg === "--env" || arg === "-e") env = argv[++i];
    else if (arg.startsWith("--env=")) env = arg.slice("--env=".length);
    else return { error: `Unknown argument '${arg}'.` };
  }
  if (!env) return { error: "Say which environment to deploy: --env staging or --env production." };
  if (!(DEPLOY_ENVIRONMENTS as readonly string[]).includes(env))
    return { error: `Unknown environment '${env}': wrangler.toml defines ${DEPLOY_ENVIRONMENTS.join(" and ")}.` };
  return { env: env as DeployEnvironment, dryRun, generateSecrets };
}

/** The Worker, D1 database and R2 buckets `env` deploys, from wrangler.toml's text. */
export function deployResources(wranglerToml: string, env: DeployEnvironment): DeployResources {
  type Section = { name?: string; d1_databases?: { binding: string; database_name: string }[]; r2_buckets?: { bucket_name: string }[] };
  const config = parse(wranglerToml) as Section & { env?: Record<string, Section> };
  const section = config.env?.[env];
  if (!section) throw new Error(`wrangler.toml has no [env.${env}]`);
  const db = section.d1_databases?.[0];
  if (!db) throw new Error(`[env.${env}] binds no D1 database`);
  return {
    worker: section.name ?? `${config.name}-${env}`,
    database: db.database_name,
    bindingOfDatabase: db.binding,
    buckets: (section.r2_buckets ?? []).map((b) => b.bucket_name),
  };
}

/** The command that sets one secret (what docs/deploy.md tells the user to run). */
export function secretPutCommand(name: (typeof REQUIRED_SECRETS)[number]["name"], env: DeployEnvironment): string {
  const secret = REQUIRED_SECRETS.find((s) => s.name === name)!;
  return `${secret.generate} | npx wrangler secret put ${name} --env ${env}`;
}

/** The first `https://…workers.dev` (or custom domain) URL in wrangler deploy's output, or null. */
export function deployedUrl(output: string): string | null {
  return /https:\/\/[A-Za-z0-9.-]+\.workers\.dev\b/.exec(output)?.[0] ?? null;
}
