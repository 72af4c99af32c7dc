/**
 * The CLI's view of the profiles file (../profiles.ts): the same data, with failures as
 * CLI errors that say how to fix them, and the order in which flags, the environment and
 * the profile decide a command's server and token.
 */

import { sameServer } from "../client.ts";
import { configPath, type Profile, type ProfilesFile, profileName, readProfiles, writeProfiles } from "../profiles.ts";
import { CliError, EXIT } from "./output.ts";

export { configPath, DEFAULT_PROFILE, profileName } from "../profiles.ts";
export type { Profile };

/** The whole file. */
export type CliConfig = ProfilesFile;

/** Reads the file; an absent file is an empty configuration, one that does not parse an error naming it. */
export function readConfig(file: string = configPath()): CliConfig {
  try {
    return readProfiles(file);
  } catch (error) {
    throw new CliError(`The Kiln config file ${file} is not valid TOML.`, {
      details: (error as Error).message,
      fix: `Fix or remove ${file}, then run \`kiln login\` again.`,
      exitCode: EXIT.usage,
    });
  }
}

/** Writes the file atomically with owner-only permissions. */
export function writeConfig(config: CliConfig, file: string = configPath()): void {
  writeProfiles(config, file);
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
  // The profile's token goes only to the profile's server, never to one named by a flag or the environment.
  const profileToken = profile && (server === undefined || sameServer(server, profile.server)) ? profile.token : undefined;
  const token = flags.token ?? env.KILN_TOKEN ?? profileToken;
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
