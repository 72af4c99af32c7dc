/** `kiln secret`, `token`, `fleet`, `badge` and `doctor`: a workspace's settings and health. */
import { type Command, Option } from "commander";
import type { CliContext } from "../context.ts";
import { doctorCommand } from "../doctor.ts";
import { integerAtLeast } from "../options.ts";
import { CliError, EXIT, emit, table } from "../output.ts";

/** Adds the workspace commands to `program`. */
export function registerWorkspaceCommands(program: Command, ctx: CliContext): void {
  registerSecretCommands(program, ctx);
  registerTokenCommands(program, ctx);
  registerFleetCommands(program, ctx);
  registerHealthCommands(program, ctx);
}

/** `kiln secret create|list|delete`: values are write-only. */
function registerSecretCommands(program: Command, ctx: CliContext): void {
  const secrets = program.command("secret").description("manage secrets (values are write-only)");
  secrets
    .command("create <name> <pairs...>")
    .description("create or replace a secret from KEY=VALUE pairs")
    .action(async (name: string, pairs: string[]) => {
      const values: Record<string, string> = {};
      for (const pair of pairs) {
        const eq = pair.indexOf("=");
        if (eq <= 0)
          throw new CliError(`'${pair}' is not KEY=VALUE.`, { fix: "Pass pairs like GITHUB_TOKEN=ghp_...", exitCode: EXIT.usage });
        values[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      const secret = await ctx.client().json<{ name: string; keys: string[] }>("PUT", ["v1", "secrets", name], { json: { values } });
      emit(ctx.json(), secret, () => `secret ${secret.name}: ${secret.keys.join(", ")}`);
    });
  secrets.command("list").action(async () => {
    const { secrets: rows } = await ctx.client().json<{ secrets: { name: string; keys: string[] }[] }>("GET", ["v1", "secrets"]);
    emit(ctx.json(), rows, () => table([["NAME", "KEYS"], ...rows.map((r) => [r.name, r.keys.join(",")])]));
  });
  secrets.command("delete <name>").action(async (name: string) => {
    await ctx.client().request("DELETE", ["v1", "secrets", name]);
    emit(ctx.json(), { deleted: name }, () => `deleted secret ${name}`);
  });
}

/** `kiln token create`: an API token, shown once. */
function registerTokenCommands(program: Command, ctx: CliContext): void {
  program
    .command("token")
    .description("manage API tokens")
    .command("create <name>")
    .addOption(new Option("--scope <scope...>", "scopes to grant").default(["images:read", "images:write"]))
    .action(async (name: string, opts: { scope: string[] }) => {
      const created = await ctx.client().json<{ id: string; token: string; scopes: string[] }>("POST", ["v1", "tokens"], {
        json: { name, kind: "api", scopes: opts.scope },
      });
      emit(
        ctx.json(),
        created,
        () => `${created.token}\n(token ${created.id}, scopes ${created.scopes.join(",")}; shown once, store it now)`,
      );
    });
}

/** `kiln fleet add|ls`: the workspace's runner fleets. */
function registerFleetCommands(program: Command, ctx: CliContext): void {
  const fleet = program.command("fleet").description("manage runner fleets");
  fleet
    .command("add <name> <url>")
    .option("--gpu <types...>", "GPU types the fleet's machines have", [])
    .option("--max-builds <n>", "maximum concurrent builds", integerAtLeast(1), 4)
    .option("--signing-secret <secret>", "Standard Webhooks secret (default: generated and printed once)")
    .action(async (name: string, url: string, opts: { gpu: string[]; maxBuilds: number; signingSecret?: string }) => {
      const created = await ctx.client().json<{ id: string; signingSecret?: string }>("POST", ["v1", "fleets"], {
        json: {
          name,
          url,
          gpuTypes: opts.gpu,
          maxConcurrentBuilds: opts.maxBuilds,
          ...(opts.signingSecret ? { signingSecret: opts.signingSecret } : {}),
        },
      });
      emit(
        ctx.json(),
        created,
        () => `fleet ${created.id}${created.signingSecret ? `\nsigning secret (shown once): ${created.signingSecret}` : ""}`,
      );
    });
  fleet.command("ls").action(async () => {
    const { fleets } = await ctx.client().json<{
      fleets: { id: string; name: string; url: string; gpuTypes: string[]; maxConcurrentBuilds: number }[];
    }>("GET", ["v1", "fleets"]);
    emit(ctx.json(), fleets, () =>
      table([
        ["FLEET", "NAME", "URL", "GPUS", "MAX"],
        ...fleets.map((f) => [f.id, f.name, f.url, f.gpuTypes.join(",") || "-", String(f.maxConcurrentBuilds)]),
      ]),
    );
  });
}

/** `kiln badge` and `kiln doctor`. */
function registerHealthCommands(program: Command, ctx: CliContext): void {
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
    .description("check a deployment: reachable, migrations current, secrets, fleets reachable and signing, registry writable")
    .option("--workspace <name>", "workspace whose registry namespace the write check uses (default: the first one, for admin tokens)")
    .action(async (opts: { workspace?: string }) => {
      const g = ctx.globals();
      ctx.setExitCode(
        await doctorCommand(
          {
            ...(g.server ? { serverUrl: g.server } : {}),
            ...(g.token ? { token: g.token } : {}),
            ...(opts.workspace ? { workspace: opts.workspace } : {}),
          },
          ctx.json(),
        ),
      );
    });
}
