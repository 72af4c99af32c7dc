/**
 * The `kiln` CLI (commander). Every command talks to the server through `KilnClient`;
 * `--server` / `--token` override KILN_SERVER_URL / KILN_TOKEN.
 */
import { KILN_VERSION } from "@kiln-build/protocol";
import { Command, CommanderError } from "commander";
import { registerAdminCommands } from "./commands/admin.ts";
import { registerAuthCommands } from "./commands/auth.ts";
import { registerCompletionCommand } from "./commands/completion.ts";
import { registerFleetCommands } from "./commands/fleets.ts";
import { registerHealthCommands } from "./commands/health.ts";
import { registerImageCommands } from "./commands/images.ts";
import { registerOpenCommand } from "./commands/open.ts";
import { registerSecretCommands } from "./commands/secrets.ts";
import { registerTokenCommands } from "./commands/tokens.ts";
import { registerVerifyCommand } from "./commands/verify.ts";
import { registerWebhookCommands } from "./commands/webhooks.ts";
import { isLocalServer, resolveConnection } from "./config.ts";
import { cliContext, type Globals } from "./context.ts";
import { type ErrorContext, EXIT, printError, toCliError } from "./output.ts";

/** The program with every command, for `main` and for tests that inspect it. */
export function createProgram(setExitCode: (code: number) => void): Command {
  const program = new Command("kiln")
    .description("Build container images on Kiln from TypeScript image definitions.")
    .version(KILN_VERSION, "-V, --version", "print the kiln version")
    .option("--server <url>", "Kiln server URL (default: KILN_SERVER_URL, else the profile's, else http://127.0.0.1:8787)")
    .option("--token <token>", "API token (default: KILN_TOKEN, else the profile's)")
    .option("--profile <name>", "profile from the config file (default: KILN_PROFILE, else the active one)")
    .option("--json", "print machine-readable JSON")
    .option("-q, --quiet", "print only the result and errors: no build log, status or progress")
    .option("--no-color", "no colours or other escape sequences in the output (also: NO_COLOR=1)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const ctx = cliContext(program, setExitCode);
  registerAuthCommands(program, ctx);
  registerImageCommands(program, ctx);
  registerOpenCommand(program, ctx);
  registerSecretCommands(program, ctx);
  registerTokenCommands(program, ctx);
  registerFleetCommands(program, ctx);
  registerWebhookCommands(program, ctx);
  registerAdminCommands(program, ctx);
  registerHealthCommands(program, ctx);
  registerVerifyCommand(program, ctx);
  registerCompletionCommand(program);
  return program;
}

/** Runs the CLI on `argv` (process.argv shape); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  // A command that reports its own failures (doctor) sets this instead of throwing.
  let exitCode: number = EXIT.ok;
  const program = createProgram((code) => {
    exitCode = code;
  });
  // `kiln logs BUILD | head`: a closed pipe ends the output, it is not a failure.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(EXIT.ok);
    throw error;
  });
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const globals = program.opts<Globals>();
    const cli = toCliError(error, errorContext(globals));
    printError(cli, !!globals.json);
    return cli.exitCode;
  }
}

/** The server a failed command talked to, for hints that fit it; never throws (the failure may be the config itself). */
function errorContext(globals: Globals): ErrorContext {
  try {
    const server = resolveConnection(globals).server ?? "http://127.0.0.1:8787";
    return { server, local: isLocalServer(server) };
  } catch {
    return {};
  }
}
