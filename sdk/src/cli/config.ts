/**
 * The CLI's profiles: one TOML file of named servers and tokens, so a user can log in once
 * and switch between deployments and workspaces (`--profile`, `KILN_PROFILE`).
 *
 *   active = "prod"
 *   [profiles.prod]
 *   server = "https://kiln.example.com"
 *   token = "kiln_api_..."
 *
 * The file holds tokens, so it is written with mode 0600 in a 0700 directory, atomically (a
 * temporary file renamed over the old one), and a file that does not parse is an error that
 * names it rather than something silently replaced.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse, stringify } from "smol-toml";
import { CliError, EXIT } from "./output.ts";

/** One named server and token. */
export type Profile = { server: string; token: string };

/** The whole file. */
export type CliConfig = { active?: string; profiles: Record<string, Profile> };

/** The profile name used when none is named and none is active. */
export const DEFAULT_PROFILE = "default";

/** Where the file lives: `KILN_CONFIG`, else `$XDG_CONFIG_HOME/kiln/config.toml`, else `~/.config/kiln/config.toml`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_CONFIG) return path.resolve(env.KILN_CONFIG);
  const base = env.XDG_CONFIG_HOME ? path.resolve(env.XDG_CONFIG_HOME) : path.join(os.homedir(), ".config");
  return path.join(base, "kiln", "config.toml");
}

/** Reads the file; an absent file is an empty configuration. */
export function readConfig(file: string = configPath()): CliConfig {
  if (!existsSync(file)) return { profiles: {} };
  let raw: Record<string, unknown>;
  try {
    raw = parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new CliError(`The Kiln config file ${file} is not valid TOML.`, {
      details: (error as Error).message,
      fix: `Fix or remove ${file}, then run \`kiln login\` again.`,
      exitCode: EXIT.usage,
    });
  }
  const profiles: Record<string, Profile> = {};
  const table = raw.profiles;
  if (table && typeof table === "object") {
    for (const [name, value] of Object.entries(table as Record<string, unknown>)) {
      const entry = value as Partial<Profile> | null;
      if (entry && typeof entry.server === "string" && typeof entry.token === "string") {
        profiles[name] = { server: entry.server, token: entry.token };
      }
    }
  }
  return { ...(typeof raw.active === "string" ? { active: raw.active } : {}), profiles };
}

/** Writes the file atomically with owner-only permissions. */
export function writeConfig(config: CliConfig, file: string = configPath()): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  const document: Record<string, unknown> = { ...(config.active ? { active: config.active } : {}), profiles: config.profiles };
  writeFileSync(temporary, `${stringify(document)}\n`, { mode: 0o600 });
  // The mode of writeFileSync is masked by the umask; make sure of 0600 before the rename.
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
}

/** The name of the profile in effect: `--profile`, else `KILN_PROFILE`, else the active one, else `default`. */
export function profileName(config: CliConfig, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.KILN_PROFILE ?? config.active ?? DEFAULT_PROFILE;
}

/** Server and token as a command uses them: flags win, then the environment, then the profile. */
export type Connection = {
  server: string | undefined;
  token: string | undefined;
  profile: string;
  source: "flags" | "env" | "profile" | "none";
};

/** Resolves the server and token a command talks to. */
export function resolveConnection(
  flags: { server?: string; token?: string; profile?: string },
  env: NodeJS.ProcessEnv = process.env,
  config: CliConfig = readConfig(configPath(env)),
): Connection {
  const name = profileName(config, flags.profile, env);
  const profile = config.profiles[name];
  if (flags.profile && !profile) {
    const known = Object.keys(config.profiles);
    throw new CliError(`No profile named '${flags.profile}'.`, {
      details: known.length ? `Profiles: ${known.join(", ")}.` : "No profiles yet.",
      fix: `Create it with \`kiln login --profile ${flags.profile} --server URL\`.`,
      exitCode: EXIT.usage,
    });
  }
  const server = flags.server ?? env.KILN_SERVER_URL ?? profile?.server;
  const token = flags.token ?? env.KILN_TOKEN ?? profile?.token;
  const source = flags.server || flags.token ? "flags" : env.KILN_SERVER_URL || env.KILN_TOKEN ? "env" : profile ? "profile" : "none";
  return { server, token, profile: name, source };
}

/** Whether `server` is this machine (the repository's `npm start` stack), where dev-stack hints make sense. */
export function isLocalServer(server: string): boolean {
  try {
    const host = new URL(server).hostname;
    return host === "localhost" || host === "127.0.0.1" || host === "[::1]" || host === "::1";
  } catch {
    return false;
  }
}
