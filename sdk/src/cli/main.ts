/**
 * The `kiln` CLI (commander). Every command talks to the server through `KilnClient`;
 * `--server` / `--token` override KILN_SERVER_URL / KILN_TOKEN.
 */
import { KILN_VERSION } from "@kiln-build/protocol";
import { Command, CommanderError } from "commander";
import { registerImageCommands } from "./commands/images.ts";
import { registerWorkspaceCommands } from "./commands/workspace.ts";
import { cliContext } from "./context.ts";
import { EXIT, printError, toCliError } from "./output.ts";

/** The program with every command, for `main` and for tests that inspect it. */
export function createProgram(setExitCode: (code: number) => void): Command {
  const program = new Command("kiln")
    .description("Build container images on Kiln from TypeScript image definitions.")
    .version(KILN_VERSION, "-V, --version", "print the kiln version")
    .option("--server <url>", "Kiln server URL (default: KILN_SERVER_URL or http://127.0.0.1:8787)")
    .option("--token <token>", "API token (default: KILN_TOKEN)")
    .option("--json", "print machine-readable JSON")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const ctx = cliContext(program, setExitCode);
  registerImageCommands(program, ctx);
  registerWorkspaceCommands(program, ctx);
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
    const cli = toCliError(error);
    printError(cli);
    return cli.exitCode;
  }
}
