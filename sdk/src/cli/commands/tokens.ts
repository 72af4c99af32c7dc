/** `kiln token create|ls|revoke`: API tokens of the workspace. */
import { type Command, Option } from "commander";
import type { CliContext } from "../context.ts";
import { emit, table } from "../output.ts";

type TokenRow = { id: string; name: string; kind: string; scopes: string[]; createdAt: string; revokedAt?: string | null };

/** Adds the token commands to `program`. */
export function registerTokenCommands(program: Command, ctx: CliContext): void {
  const token = program.command("token").description("manage API tokens");
  token
    .command("create <name>")
    .description("create an API token; it is printed once")
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
  token
    .command("ls")
    .description("list the workspace's tokens (never their values)")
    .action(async () => {
      const { tokens } = await ctx.client().json<{ tokens: TokenRow[] }>("GET", ["v1", "tokens"]);
      emit(ctx.json(), tokens, () =>
        table([
          ["TOKEN", "NAME", "KIND", "SCOPES", "CREATED", "REVOKED"],
          ...tokens.map((t) => [t.id, t.name, t.kind, t.scopes.join(","), t.createdAt, t.revokedAt ?? "-"]),
        ]),
      );
    });
  token
    .command("revoke <id>")
    .description("revoke a token (requests with it are refused from now on)")
    .action(async (id: string) => {
      await ctx.client().request("DELETE", ["v1", "tokens", id]);
      emit(ctx.json(), { revoked: id }, () => `revoked token ${id}`);
    });
}
