/** What every command of the `kiln` CLI reads from the global options. */
import type { Command } from "commander";
import { KilnClient } from "../client.ts";
import { type Connection, resolveConnection } from "./config.ts";

/**
 * The global options (`kiln --server URL --token T --profile P --json <command>`). `quiet`:
 * `--quiet`; `color`: false with `--no-color` (commander's default is true).
 */
export type Globals = { server?: string; token?: string; profile?: string; json?: boolean; quiet?: boolean; color?: boolean };

/** The shared state a command handler receives. */
export type CliContext = {
  /** A client for the server and token the flags, the environment or the profile name. */
  client(): KilnClient;
  /** Where the server and token come from (flags, environment, profile). */
  connection(): Connection;
  /** Whether to print machine-readable JSON. */
  json(): boolean;
  /** The global options as given. */
  globals(): Globals;
  /** For commands that report their own failures (doctor) instead of throwing. */
  setExitCode(code: number): void;
};

/** The context for `program`, whose options are parsed before any action runs. */
export function cliContext(program: Command, setExitCode: (code: number) => void): CliContext {
  const globals = () => program.opts<Globals>();
  const connection = () => resolveConnection(globals());
  return {
    client: () => {
      const { server, token } = connection();
      return new KilnClient({ ...(server ? { serverUrl: server } : {}), ...(token ? { token } : {}) });
    },
    connection,
    json: () => !!globals().json,
    globals,
    setExitCode,
  };
}
