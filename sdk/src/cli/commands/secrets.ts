/** `kiln secret create|list|delete`: values are write-only, and can stay out of shell history. */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { CliContext } from "../context.ts";
import { CliError, EXIT, emit, table } from "../output.ts";

/** Adds the secret commands to `program`. */
export function registerSecretCommands(program: Command, ctx: CliContext): void {
  const secrets = program.command("secret").description("manage secrets (values are write-only)");
  secrets
    .command("create <name> [pairs...]")
    .description("create or replace a secret from KEY=VALUE pairs, a file of KEY=VALUE lines, or stdin")
    .option("--from-file <file>", "read KEY=VALUE lines from FILE ('-' for stdin), keeping values out of shell history")
    .action(async (name: string, pairs: string[], opts: { fromFile?: string }) => {
      const values = { ...(opts.fromFile ? parseEnvLines(readSource(opts.fromFile), opts.fromFile) : {}), ...parsePairs(pairs) };
      if (Object.keys(values).length === 0) {
        throw new CliError("The secret has no values.", {
          fix: "Pass KEY=VALUE pairs, or --from-file FILE (or --from-file - to read them from stdin).",
          exitCode: EXIT.usage,
        });
      }
      const secret = await ctx.client().json<{ name: string; keys: string[] }>("PUT", ["v1", "secrets", name], { json: { values } });
      emit(ctx.json(), secret, () => `secret ${secret.name}: ${secret.keys.join(", ")}`);
    });
  secrets
    .command("list")
    .alias("ls")
    .description("list secrets and their key names (never values)")
    .action(async () => {
      const { secrets: rows } = await ctx.client().json<{ secrets: { name: string; keys: string[] }[] }>("GET", ["v1", "secrets"]);
      emit(ctx.json(), rows, () => table([["NAME", "KEYS"], ...rows.map((r) => [r.name, r.keys.join(",")])]));
    });
  secrets
    .command("delete <name>")
    .alias("rm")
    .description("delete a secret")
    .action(async (name: string) => {
      await ctx.client().request("DELETE", ["v1", "secrets", name]);
      emit(ctx.json(), { deleted: name }, () => `deleted secret ${name}`);
    });
}

/** `KEY=VALUE` arguments as an object; anything else is a usage error. */
export function parsePairs(pairs: readonly string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CliError(`'${pair}' is not KEY=VALUE.`, { fix: "Pass pairs like GITHUB_TOKEN=ghp_...", exitCode: EXIT.usage });
    values[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return values;
}

/** `KEY=VALUE` lines (a dotenv file without interpolation): blank lines and `#` comments skipped, `export ` allowed. */
export function parseEnvLines(text: string, source: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim().replace(/^export\s+/, "");
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) {
      // The line's text may be a secret value: name the line, never print it.
      throw new CliError(`Line ${i + 1} of ${source} is not KEY=VALUE.`, { exitCode: EXIT.usage });
    }
    const value = line.slice(eq + 1);
    values[line.slice(0, eq).trim()] = /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
  }
  return values;
}

function readSource(file: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (error) {
    throw new CliError(`Cannot read ${file}.`, { details: (error as Error).message, exitCode: EXIT.usage });
  }
}
