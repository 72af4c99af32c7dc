/** What every command of the `kiln` CLI reads from the global options. */
import type { Command } from "commander";
import { KilnClient } from "../client.ts";

/** The global options (`kiln --server URL --token T --json <command>`). */
export type Globals = { server?: string; token?: string; json?: boolean };

/** The shared state a command handler receives. */
export type CliContext = {
  /** A client for the server and token the global options and environment name. */
  client(): KilnClient;
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
  return {
    client: () => {
      const g = globals();
      return new KilnClient({ ...(g.server ? { serverUrl: g.server } : {}), ...(g.token ? { token: g.token } : {}) });
    },
    json: () => !!globals().json,
    globals,
    setExitCode,
  };
}
