/** `kiln workspace create|ls` (admin tokens) and `kiln repo visibility`: the registry's namespaces. */
import type { Command } from "commander";
import type { CliContext } from "../context.ts";
import { CliError, EXIT, emit, table } from "../output.ts";

/** Adds the workspace and repository commands to `program`. */
export function registerAdminCommands(program: Command, ctx: CliContext): void {
  const workspace = program.command("workspace").description("manage workspaces (admin token)");
  workspace
    .command("create <name>")
    .description("create a workspace: a tenant and its registry namespace")
    .action(async (name: string) => {
      const created = await ctx.client().json<{ id: string; name: string }>("POST", ["v1", "workspaces"], { json: { name } });
      emit(ctx.json(), created, () => `workspace ${created.name} (${created.id})`);
    });
  workspace
    .command("ls")
    .description("list workspaces")
    .action(async () => {
      const { workspaces } = await ctx
        .client()
        .json<{ workspaces: { id: string; name: string; createdAt: string }[] }>("GET", ["v1", "workspaces"]);
      emit(ctx.json(), workspaces, () => table([["WORKSPACE", "NAME", "CREATED"], ...workspaces.map((w) => [w.id, w.name, w.createdAt])]));
    });

  program
    .command("repo")
    .description("registry repositories")
    .command("visibility <repository> <visibility>")
    .description("make a repository of the built-in registry public (anyone can pull) or private")
    .action(async (repository: string, visibility: string) => {
      if (visibility !== "public" && visibility !== "private") {
        throw new CliError(`Visibility must be 'public' or 'private', not '${visibility}'.`, { exitCode: EXIT.usage });
      }
      const result = await ctx.client().json("PUT", ["v1", "registry", "repositories"], {
        json: { repository, public: visibility === "public" },
      });
      emit(ctx.json(), result, () => `${repository} is ${visibility}`);
    });
}
