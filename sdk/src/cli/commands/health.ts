/** `kiln badge` and `kiln doctor`: showing and checking a deployment. */
import type { Command } from "commander";
import type { CliContext } from "../context.ts";
import { doctorCommand } from "../doctor.ts";
import { emit } from "../output.ts";

/** Adds the badge and doctor commands to `program`. */
export function registerHealthCommands(program: Command, ctx: CliContext): void {
  program
    .command("badge <tag>")
    .description("print the Markdown for a public tag's status badge")
    .requiredOption("--workspace <name>", "the workspace the tag belongs to")
    .action((tag: string, opts: { workspace: string }) => {
      const base = ctx.client().serverUrl;
      const path = `${encodeURIComponent(opts.workspace)}/${encodeURIComponent(tag)}`;
      const markdown = `[![kiln: ${tag}](${base}/badges/${path}.svg)](${base}/images/by-tag/${path})`;
      emit(ctx.json(), { markdown }, () => markdown);
    });

  program
    .command("doctor")
    .description("check a deployment: reachable, token, migrations current, secrets, fleets reachable and signing, registry writable")
    .option("--workspace <name>", "workspace whose registry namespace the write check uses (default: the first one, for admin tokens)")
    .action(async (opts: { workspace?: string }) => {
      const { server, token } = ctx.connection();
      ctx.setExitCode(
        await doctorCommand(
          {
            ...(server ? { serverUrl: server } : {}),
            ...(token ? { token } : {}),
            ...(opts.workspace ? { workspace: opts.workspace } : {}),
          },
          ctx.json(),
        ),
      );
    });
}
