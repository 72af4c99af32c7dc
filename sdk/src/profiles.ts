/**
 * Profiles: named servers and tokens in one TOML file, written by `kiln login` and read by
 * the CLI and by `new KilnClient()`, so code and commands use the same login.
 *
 *   active = "prod"
 *   [profiles.prod]
 *   server = "https://kiln.example.com"
 *   token = "kiln_api_..."
 *
 * The file holds tokens: it is written with mode 0600 in a 0700 directory, atomically (a
 * temporary file renamed over the old one).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse, stringify } from "smol-toml";

/** One named server and token. */
export type Profile = { server: string; token: string };

/** The whole file. */
export type ProfilesFile = { active?: string; profiles: Record<string, Profile> };

/** The profile name used when none is named and none is active. */
export const DEFAULT_PROFILE = "default";

/** Where the file lives: `KILN_CONFIG`, else `$XDG_CONFIG_HOME/kiln/config.toml`, else `~/.config/kiln/config.toml`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_CONFIG) return path.resolve(env.KILN_CONFIG);
  const base = env.XDG_CONFIG_HOME ? path.resolve(env.XDG_CONFIG_HOME) : path.join(os.homedir(), ".config");
  return path.join(base, "kiln", "config.toml");
}

/** Reads the file; an absent file is empty. Throws the TOML parser's error for a file that does not parse. */
export function readProfiles(file: string = configPath()): ProfilesFile {
  if (!existsSync(file)) return { profiles: {} };
  const raw = parse(readFileSync(file, "utf8"));
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
export function writeProfiles(config: ProfilesFile, file: string = configPath()): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  const document: Record<string, unknown> = { ...(config.active ? { active: config.active } : {}), profiles: config.profiles };
  writeFileSync(temporary, `${stringify(document)}\n`, { mode: 0o600 });
  // writeFileSync's mode is masked by the umask; make sure of 0600 before the rename.
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
}

/** The name of the profile in effect: the one named, else `KILN_PROFILE`, else the active one, else `default`. */
export function profileName(config: ProfilesFile, named: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return named ?? env.KILN_PROFILE ?? config.active ?? DEFAULT_PROFILE;
}

/**
 * The profile `new KilnClient()` falls back to when neither its parameters nor the environment
 * name a server or token. A file that cannot be read gives none: the CLI reports it, code
 * that passes its own settings never depends on it.
 */
export function profileDefaults(env: NodeJS.ProcessEnv = process.env): Partial<Profile> {
  try {
    const config = readProfiles(configPath(env));
    return config.profiles[profileName(config, undefined, env)] ?? {};
  } catch {
    return {};
  }
}
